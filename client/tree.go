package client

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// Labels read from the exporter's report. The jumpstarter.dev labels come from any Jumpstarter
// exporter; the jumpwire.dev labels only from a jumpwire exporter, so every use falls back when
// they are absent.
const (
	// LabelClient names the client class a Jumpstarter client loads for the driver, e.g.
	// "jumpstarter_driver_power.client.PowerClient".
	LabelClient = "jumpstarter.dev/client"
	// LabelName is an instance's name in its parent (and, on the report itself, the exporter's name).
	LabelName = "jumpstarter.dev/name"
	// LabelType is the jumpwire driver type, e.g. "power".
	LabelType = "jumpwire.dev/type"
	// LabelMethods is a JSON object mapping each method to its kind: KindUnary, KindStreaming or
	// KindStream.
	LabelMethods = "jumpwire.dev/methods"
	// LabelSignatures is a JSON object mapping each call (unary or streaming method) to its
	// [Signature].
	LabelSignatures = "jumpwire.dev/signatures"
	// LabelState is the state of the driver's process: "running", "restarting" or "failed".
	LabelState = "jumpwire.dev/state"
)

// Method kinds, as returned by [Driver.MethodKind].
const (
	// KindUnary is a method with one result, called with [Client.Call].
	KindUnary = "unary"
	// KindStreaming is a method whose results arrive one by one, called with [Client.StreamingCall].
	KindStreaming = "streaming"
	// KindStream is a raw byte stream opened through RouterService.Stream.
	KindStream = "stream"
)

// Tree is an exporter's driver tree, built from its report.
type Tree struct {
	// Root is the exporter's root driver (a composite); its Name and Path are "".
	Root *Driver
	// UUID is the exporter's uuid.
	UUID string
	// Name is the exporter's name (the report's jumpstarter.dev/name label), "" when not reported.
	Name string
	// Labels are the exporter's labels.
	Labels map[string]string
	// Motd is the exporter's message of the day.
	Motd string
}

// Driver is one driver instance in a [Tree].
type Driver struct {
	// UUID identifies the instance in calls.
	UUID string
	// Name is the instance's name in its parent ("" for the root).
	Name string
	// Path is the dotted path from the root ("dut.power"); "" for the root.
	Path string
	// Description is the instance's description, "" when none.
	Description string
	// Labels are the instance's labels as reported.
	Labels map[string]string
	// Methods maps method names to their descriptions (the report's methods_description).
	Methods map[string]string
	// Parent is the enclosing driver, nil for the root.
	Parent *Driver
	// Children are the instance's children in report order.
	Children []*Driver
}

// NewTree builds a Tree from a GetReport response. Reports link to their parent by parent_uuid; the
// one without a parent is the root. Children keep report order.
func NewTree(resp *jumpstarterv1.GetReportResponse) (*Tree, error) {
	t := &Tree{
		UUID:   resp.GetUuid(),
		Name:   resp.GetLabels()[LabelName],
		Labels: resp.GetLabels(),
		Motd:   resp.GetMotd(),
	}
	byUUID := make(map[string]*Driver, len(resp.GetReports()))
	for _, r := range resp.GetReports() {
		if _, dup := byUUID[r.GetUuid()]; dup {
			return nil, fmt.Errorf("exporter report: driver uuid %s appears twice", r.GetUuid())
		}
		d := &Driver{
			UUID:        r.GetUuid(),
			Name:        r.GetLabels()[LabelName],
			Description: r.GetDescription(),
			Labels:      r.GetLabels(),
			Methods:     r.GetMethodsDescription(),
		}
		if d.Labels == nil {
			d.Labels = map[string]string{}
		}
		if d.Methods == nil {
			d.Methods = map[string]string{}
		}
		byUUID[d.UUID] = d
		if r.GetParentUuid() == "" {
			if t.Root != nil {
				return nil, fmt.Errorf("exporter report: two roots (%s and %s)", t.Root.UUID, d.UUID)
			}
			t.Root = d
		}
	}
	if t.Root == nil {
		return nil, fmt.Errorf("exporter report: no root driver (every report has a parent)")
	}
	for _, r := range resp.GetReports() {
		if r.GetParentUuid() == "" {
			continue
		}
		d, parent := byUUID[r.GetUuid()], byUUID[r.GetParentUuid()]
		if parent == nil {
			return nil, fmt.Errorf("exporter report: driver %s names unknown parent %s", d.UUID, r.GetParentUuid())
		}
		d.Parent = parent
		parent.Children = append(parent.Children, d)
	}
	t.Root.Name = ""
	var setPaths func(d *Driver) int
	setPaths = func(d *Driver) int {
		n := 1
		for _, c := range d.Children {
			if c.Name == "" {
				c.Name = c.UUID // a report without a name label: still addressable
			}
			c.Path = joinPath(d.Path, c.Name)
			n += setPaths(c)
		}
		return n
	}
	if n := setPaths(t.Root); n != len(byUUID) {
		return nil, fmt.Errorf("exporter report: %d of %d drivers are not reachable from the root (parent cycle)", len(byUUID)-n, len(byUUID))
	}
	return t, nil
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// ClientClass returns the client class a Jumpstarter client would load for the driver (the
// jumpstarter.dev/client label), "" when not reported.
func (d *Driver) ClientClass() string { return d.Labels[LabelClient] }

// Type returns the driver type: the jumpwire.dev/type label, or else the last element of the
// client class ("PowerClient"), or "" when neither is reported.
func (d *Driver) Type() string {
	if t := d.Labels[LabelType]; t != "" {
		return t
	}
	cls := d.ClientClass()
	return cls[strings.LastIndexByte(cls, '.')+1:]
}

// State returns the state of the driver's process (the jumpwire.dev/state label: "running",
// "restarting", "failed"), "" when not reported.
func (d *Driver) State() string { return d.Labels[LabelState] }

// methodKinds parses the jumpwire.dev/methods label; nil when absent or malformed.
func (d *Driver) methodKinds() map[string]string {
	raw, ok := d.Labels[LabelMethods]
	if !ok {
		return nil
	}
	var kinds map[string]string
	if json.Unmarshal([]byte(raw), &kinds) != nil {
		return nil
	}
	return kinds
}

// MethodKind returns how method name is called: KindUnary, KindStreaming or KindStream, from the
// jumpwire.dev/methods label. It returns KindUnary when the kind is unknown.
func (d *Driver) MethodKind(name string) string {
	switch k := d.methodKinds()[name]; k {
	case KindStreaming, KindStream:
		return k
	default:
		return KindUnary
	}
}

// Signature is what a jumpwire exporter reports of a method's parameters and result.
type Signature struct {
	// Params are the positional parameters in order.
	Params []Param `json:"params"`
	// Variadic means the last parameter may repeat (or be left out).
	Variadic bool `json:"variadic,omitempty"`
	// Result is the JSON type of the result (of each result, for a streaming method).
	Result string `json:"result,omitempty"`
}

// Param is one parameter of a method.
type Param struct {
	// Name is the parameter's name, "" when the driver does not name it.
	Name string `json:"name,omitempty"`
	// Type is its JSON type: "integer", "boolean", "string", "object", ...
	Type string `json:"type"`
	// Default is the value the driver uses when the caller leaves the parameter out (as JSON),
	// nil when the parameter is required.
	Default json.RawMessage `json:"default,omitempty"`
}

// String renders the parameter as in a signature: "channel integer", "state boolean = true",
// or only the type when it has no name.
func (p Param) String() string {
	s := p.Type
	if p.Name != "" {
		s = p.Name + " " + s
	}
	if p.Default != nil {
		s += " = " + string(p.Default)
	}
	return s
}

// Signature returns the parameters and result of method, from the jumpwire.dev/signatures label;
// ok is false when the exporter does not report them (a byte stream, or not a jumpwire exporter).
func (d *Driver) Signature(method string) (sig Signature, ok bool) {
	raw, found := d.Labels[LabelSignatures]
	if !found {
		return Signature{}, false
	}
	var sigs map[string]Signature
	if json.Unmarshal([]byte(raw), &sigs) != nil {
		return Signature{}, false
	}
	sig, ok = sigs[method]
	return sig, ok
}

// Format renders a call of method with sig: "on(channel integer, state boolean = true)".
func (sig Signature) Format(method string) string {
	return method + "(" + sig.ParamList() + ")"
}

// ParamList renders the parameters: "channel integer, state boolean = true", "" when none.
func (sig Signature) ParamList() string {
	parts := make([]string, len(sig.Params))
	for i, p := range sig.Params {
		parts[i] = p.String()
		if sig.Variadic && i == len(sig.Params)-1 {
			parts[i] += "..."
		}
	}
	return strings.Join(parts, ", ")
}

// MethodNames returns the names of the driver's known methods, sorted: those with a description
// and those listed in the jumpwire.dev/methods label.
func (d *Driver) MethodNames() []string {
	names := make([]string, 0, len(d.Methods))
	for name := range d.Methods {
		names = append(names, name)
	}
	for name := range d.methodKinds() {
		if _, ok := d.Methods[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// HasMethod reports whether the driver has method name. Only a jumpwire exporter lists every
// method (the jumpwire.dev/methods label); for other exporters HasMethod returns true for any name,
// so that callers let the exporter decide.
func (d *Driver) HasMethod(name string) bool {
	kinds := d.methodKinds()
	if kinds == nil {
		return true
	}
	if _, ok := kinds[name]; ok {
		return true
	}
	_, ok := d.Methods[name]
	return ok
}

// Child returns the direct child called name, or nil.
func (d *Driver) Child(name string) *Driver {
	for _, c := range d.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ChildNames returns the names of the driver's children in report order.
func (d *Driver) ChildNames() []string {
	names := make([]string, len(d.Children))
	for i, c := range d.Children {
		names[i] = c.Name
	}
	return names
}

// Lookup finds a driver by its dotted path ("dut.power"); "" and "." name the root. The error
// (ErrNoDriver) says where the path stopped matching and lists the children valid there.
func (t *Tree) Lookup(path string) (*Driver, error) {
	d := t.Root
	if path == "" || path == "." {
		return d, nil
	}
	for _, name := range strings.Split(path, ".") {
		c := d.Child(name)
		if c == nil {
			return nil, noDriverError(d, name)
		}
		d = c
	}
	return d, nil
}

// noDriverError says that parent has no child called name, and which children it has.
func noDriverError(parent *Driver, name string) error {
	where := ""
	if parent.Path != "" {
		where = " in " + parent.Path
	}
	children := "it has no children"
	if len(parent.Children) > 0 {
		children = "drivers: " + strings.Join(parent.ChildNames(), ", ")
	}
	return fmt.Errorf("%w %q%s; %s", ErrNoDriver, name, where, children)
}

// Resolve consumes leading words for as long as they name children, starting at the root; a word
// may itself be a dotted path ("dut.power"), consumed only when all of it matches. It returns the
// deepest driver reached and the words left over (typically a method and its arguments).
func (t *Tree) Resolve(words []string) (*Driver, []string) {
	d := t.Root
	for i, w := range words {
		next := d
		for _, name := range strings.Split(w, ".") {
			if next = next.Child(name); next == nil {
				return d, words[i:]
			}
		}
		d = next
	}
	return d, nil
}

// Walk calls fn for every driver in pre-order (parents before children, children in report order);
// the root has depth 0.
func (t *Tree) Walk(fn func(d *Driver, depth int)) {
	var walk func(d *Driver, depth int)
	walk = func(d *Driver, depth int) {
		fn(d, depth)
		for _, c := range d.Children {
			walk(c, depth+1)
		}
	}
	walk(t.Root, 0)
}
