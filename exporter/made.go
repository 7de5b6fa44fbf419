package exporter

import (
	"context"
	"encoding/json"
	"maps"
	"sync"

	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/metadata"
)

// Children a driver creates itself (upstream's Dutlink makes its power,
// storage and console; a Qemu its children) are not in the config: a Python
// driver's process lists them in its ConfigureResponse, under labelChildren,
// with paths relative to the configured instance. The exporter adds them to
// the tree below their instance, with uuids from their paths like every
// node, and routes their calls and streams to the instance's process with
// the relative path in the protocol.InstanceHeader metadata.
const labelChildren = "jumpwire.dev/children"

// madeChild is one child as the driver's process describes it.
type madeChild struct {
	Path        string            `json:"path"` // dotted, relative to the configured instance
	Name        string            `json:"name"`
	Client      string            `json:"client"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
	Methods     []struct {
		Name        string `json:"name"`
		Kind        string `json:"kind"` // unary | streaming | stream
		Description string `json:"description"`
	} `json:"methods"`
}

// conf is the made child's part of the tree report, as a driver's own
// ConfigureResponse would say it.
func (c *madeChild) conf() *pluginv1.ConfigureResponse {
	r := &pluginv1.ConfigureResponse{Description: c.Description, Labels: c.Labels}
	for _, m := range c.Methods {
		kind := pluginv1.MethodKind_METHOD_KIND_UNARY
		switch m.Kind {
		case "streaming":
			kind = pluginv1.MethodKind_METHOD_KIND_STREAMING
		case "stream":
			kind = pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM
		}
		r.Methods = append(r.Methods, &pluginv1.Method{Name: m.Name, Kind: kind, Description: m.Description})
	}
	return r
}

// madeCache remembers the made nodes of each ConfigureResponse (one per
// process: a restarted process answers anew).
type madeCache struct {
	mu    sync.Mutex
	nodes map[*pluginv1.ConfigureResponse][]*node
}

// made returns the nodes of the children the driver of owner created, per
// its answer conf, parents before children.
func (e *Exporter) made(owner *node, conf *pluginv1.ConfigureResponse) []*node {
	raw, ok := conf.GetLabels()[labelChildren]
	if !ok {
		return nil
	}
	e.madeNodes.mu.Lock()
	defer e.madeNodes.mu.Unlock()
	if ns, ok := e.madeNodes.nodes[conf]; ok {
		return ns
	}
	var children []*madeChild
	if err := json.Unmarshal([]byte(raw), &children); err != nil {
		e.logger.Warn("driver listed its children unreadably", "instance", owner.path(), "error", err)
		children = nil
	}
	byRel := map[string]*node{"": owner}
	var out []*node
	for _, c := range children {
		parentRel, _ := cutLast(c.Path)
		parent, ok := byRel[parentRel]
		if !ok || c.Path == "" || byRel[c.Path] != nil {
			continue // a child must come after its parent, once
		}
		path := owner.path() + "." + c.Path
		n := &node{
			uuid:   instanceUUID(e.cfg.Metadata.Namespace, e.cfg.Metadata.Name, path),
			parent: parent,
			inst:   &config.Instance{Name: c.Name, Path: path, KeyPath: owner.inst.KeyPath},
			owner:  owner,
			rel:    c.Path,
			child:  c,
		}
		byRel[c.Path] = n
		out = append(out, n)
	}
	if e.madeNodes.nodes == nil {
		e.madeNodes.nodes = map[*pluginv1.ConfigureResponse][]*node{}
	}
	e.madeNodes.nodes[conf] = out
	return out
}

// cutLast splits "a.b.c" into "a.b" and "c"; "a" into "" and "a".
func cutLast(path string) (string, string) {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[:i], path[i+1:]
		}
	}
	return "", path
}

// withMade returns nodes with the children that the current session's
// drivers made inserted after their owners, and the index by uuid. Without
// any, it returns its arguments.
func (e *Exporter) withMade(nodes []*node, byUUID map[string]*node) ([]*node, map[string]*node) {
	e.mu.Lock()
	sess := e.sess
	e.mu.Unlock()
	if sess == nil {
		return nodes, byUUID
	}
	var (
		out []*node
		all map[string]*node
	)
	for i, n := range nodes {
		var made []*node
		if n.isDriver() && n.entry != nil && n.entry.Python != nil {
			made = e.made(n, sess.Configured(n.uuid))
		}
		if len(made) > 0 && out == nil {
			out = append(make([]*node, 0, len(nodes)+len(made)), nodes[:i]...)
			all = maps.Clone(byUUID)
		}
		if out == nil {
			continue
		}
		out = append(out, n)
		for _, m := range made {
			if _, taken := all[m.uuid]; taken {
				continue // the config has an instance at that path: it wins
			}
			out = append(out, m)
			all[m.uuid] = m
		}
	}
	if out == nil {
		return nodes, byUUID
	}
	return out, all
}

// route returns the node whose process serves n and the context to call it
// with: for a made child, its owner, with its path in the metadata.
func route(ctx context.Context, n *node) (context.Context, *node) {
	if n.owner == nil {
		return ctx, n
	}
	return metadata.AppendToOutgoingContext(ctx, protocol.InstanceHeader, n.rel), n.owner
}
