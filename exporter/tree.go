package exporter

import (
	"encoding/json"
	"maps"
	"strconv"

	"github.com/google/uuid"
	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/plugins"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// Labels the exporter reports on every driver instance.
const (
	LabelClient     = "jumpstarter.dev/client"  // the client class a Jumpstarter client loads
	LabelName       = "jumpstarter.dev/name"    // the instance's key in its parent
	LabelType       = "jumpwire.dev/type"       // the driver type
	LabelMethods    = "jumpwire.dev/methods"    // JSON: method name -> unary | streaming | stream
	LabelSignatures = "jumpwire.dev/signatures" // JSON: method name -> its parameters and result (see signatures)
	LabelState      = "jumpwire.dev/state"      // running | restarting | failed
	LabelRestarts   = "jumpwire.dev/restarts"   // how often the driver's process was restarted
	LabelLastExit   = "jumpwire.dev/last-exit"  // how its last process ended
	LabelPid        = "jumpwire.dev/pid"        // its current plugin process
	LabelRef        = "jumpwire.dev/ref"        // for an alias: the dotted path it stands for
	LabelVersion    = "jumpwire.dev/version"    // the plugin binary's version

	compositeClient = "jumpstarter_driver_composite.client.CompositeClient"
)

// uuidSpace is the UUIDv5 namespace of jumpwire driver instances.
var uuidSpace = uuid.MustParse("6b1f3c2a-8e4d-5f7a-9c0b-2d4e6f8a1b3c")

// instanceUUID derives the stable uuid of the instance at path ("" for the
// root) of the exporter namespace/name: the same across restarts, swaps and
// sessions.
func instanceUUID(namespace, name, path string) string {
	return uuid.NewSHA1(uuidSpace, []byte(namespace+"/"+name+":"+path)).String()
}

// node is one entry of the driver tree.
type node struct {
	uuid   string
	parent *node
	inst   *config.Instance // nil for the root
	target *node            // for a ref: the node it stands for
	entry  *plugins.Entry   // for a driver: the binary providing it
	dtype  *pluginv1.DriverType

	// For a child a driver created itself (see made.go): the node whose
	// process serves it, its path below that node, and what the driver said.
	owner *node
	rel   string
	child *madeChild
}

func (n *node) path() string {
	if n.inst == nil {
		return ""
	}
	return n.inst.Path
}

// isDriver reports whether the node runs a driver instance of its own.
func (n *node) isDriver() bool { return n.inst != nil && n.inst.Type != "" }

// buildTree lists the root and every instance of cfg in pre-order, and
// indexes them by uuid.
func buildTree(cfg *config.Config) ([]*node, map[string]*node) {
	root := &node{uuid: instanceUUID(cfg.Metadata.Namespace, cfg.Metadata.Name, "")}
	nodes := []*node{root}
	byPath := map[string]*node{"": root}
	var add func(parent *node, list []*config.Instance)
	add = func(parent *node, list []*config.Instance) {
		for _, inst := range list {
			n := &node{uuid: instanceUUID(cfg.Metadata.Namespace, cfg.Metadata.Name, inst.Path), parent: parent, inst: inst}
			nodes = append(nodes, n)
			byPath[inst.Path] = n
			add(n, inst.Children)
		}
	}
	add(root, cfg.Export)
	byUUID := make(map[string]*node, len(nodes))
	for _, n := range nodes {
		if n.inst != nil && n.inst.Ref != "" {
			n.target = byPath[n.inst.Ref]
		}
		byUUID[n.uuid] = n
	}
	return nodes, byUUID
}

// methodKinds renders the kinds of methods for the LabelMethods label.
func methodKinds(methods []*pluginv1.Method) string {
	kinds := make(map[string]string, len(methods))
	for _, m := range methods {
		switch m.Kind {
		case pluginv1.MethodKind_METHOD_KIND_STREAMING:
			kinds[m.Name] = "streaming"
		case pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM:
			kinds[m.Name] = "stream"
		default:
			kinds[m.Name] = "unary"
		}
	}
	b, _ := json.Marshal(kinds)
	return string(b)
}

// signature is one method's entry in the LabelSignatures label.
type signature struct {
	Params   []signatureParam `json:"params"`
	Variadic bool             `json:"variadic,omitempty"`
	Result   string           `json:"result,omitempty"`
}

// signatureParam is one parameter: its JSON type, its name when the driver
// names it, and its default when it has one.
type signatureParam struct {
	Name    string          `json:"name,omitempty"`
	Type    string          `json:"type"`
	Default json.RawMessage `json:"default,omitempty"`
}

// signatures renders the parameters of the calls among methods for the
// LabelSignatures label (byte streams take none).
func signatures(methods []*pluginv1.Method) string {
	sigs := make(map[string]signature, len(methods))
	for _, m := range methods {
		if m.Kind == pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM {
			continue
		}
		sig := signature{Params: []signatureParam{}, Variadic: m.Variadic, Result: m.Result}
		for i, typ := range m.Params {
			p := signatureParam{Type: typ}
			if i < len(m.ParamInfo) {
				info := m.ParamInfo[i]
				p.Name = info.Name
				if info.Default != nil {
					if b, err := info.Default.MarshalJSON(); err == nil {
						p.Default = b
					}
				}
			}
			sig.Params = append(sig.Params, p)
		}
		sigs[m.Name] = sig
	}
	b, _ := json.Marshal(sigs)
	return string(b)
}

// report describes one node to clients. conf is what its driver answered to
// its config (nil for composites).
func (e *Exporter) report(n *node, conf *pluginv1.ConfigureResponse, health *host.Health) *jumpstarterv1.DriverInstanceReport {
	r := &jumpstarterv1.DriverInstanceReport{
		Uuid:               n.uuid,
		Labels:             map[string]string{LabelClient: compositeClient, LabelType: "composite"},
		MethodsDescription: map[string]string{},
	}
	if n.parent != nil {
		r.ParentUuid = &n.parent.uuid
	}
	src := n
	if n.target != nil {
		src = n.target
		r.Labels[LabelRef] = n.target.path()
	}
	if n.owner != nil {
		conf = n.child.conf()
		r.Labels[LabelClient] = n.child.Client
		r.Labels[LabelType] = n.owner.dtype.GetName() + ":" + n.rel
		r.Labels[LabelMethods] = methodKinds(conf.Methods)
		maps.Copy(r.Labels, conf.Labels)
		if health != nil {
			r.Labels[LabelState] = health.State.String()
			if health.Pid != 0 {
				r.Labels[LabelPid] = strconv.Itoa(health.Pid)
			}
		}
		for _, m := range conf.Methods {
			r.MethodsDescription[m.Name] = m.Description
		}
		if conf.Description != "" {
			r.Description = &conf.Description
		}
		r.Labels[LabelName] = n.inst.Name
		return r
	}
	if src.isDriver() && conf != nil {
		maps.Copy(r.Labels, conf.Labels)
		delete(r.Labels, labelChildren)
		r.Labels[LabelClient] = src.dtype.Client
		r.Labels[LabelType] = src.dtype.Name
		r.Labels[LabelMethods] = methodKinds(conf.Methods)
		r.Labels[LabelSignatures] = signatures(conf.Methods)
		if health != nil {
			r.Labels[LabelState] = health.State.String()
			r.Labels[LabelRestarts] = strconv.Itoa(health.Restarts)
			if health.LastExit != "" {
				r.Labels[LabelLastExit] = health.LastExit
			}
			if health.Pid != 0 {
				r.Labels[LabelPid] = strconv.Itoa(health.Pid)
			}
		}
		if v := src.entry.Info.GetVersion(); v != "" {
			r.Labels[LabelVersion] = v
		}
		for _, m := range conf.Methods {
			r.MethodsDescription[m.Name] = m.Description
		}
		if conf.Description != "" {
			r.Description = &conf.Description
		}
		maps.Copy(r.MethodsDescription, src.inst.MethodsDescription)
	}
	if n.inst == nil { // the root: the exporter itself
		if d := e.Config().Description; d != "" {
			r.Description = &d
		}
		return r
	}
	r.Labels[LabelName] = n.inst.Name
	if n.inst.Description != nil {
		r.Description = n.inst.Description
	} else if src.inst != nil && src.inst.Description != nil {
		r.Description = src.inst.Description
	}
	return r
}
