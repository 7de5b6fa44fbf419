package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/plugins"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// PluginPathEnv is the environment variable whose directories
// (colon-separated) are searched for plugin binaries after PluginDirs.
const PluginPathEnv = plugins.PathEnv

// PluginCacheDir is where what each plugin binary provides is cached, by
// content hash; "" when the user has no cache directory.
func PluginCacheDir() string { return plugins.CacheDir() }

// PluginProtocol is the plugin protocol this exporter speaks, "major.minor".
func PluginProtocol() string { return fmt.Sprintf("%d.%d", protocol.Version, protocol.Minor) }

// newCatalog is the plugin catalog searching dirs, then $JUMPWIRE_PLUGIN_PATH
// and the plugins directory next to the executable.
func newCatalog(dirs []string, opts ...plugins.Option) *plugins.Catalog {
	return plugins.New(plugins.SearchPath(dirs), func(ctx context.Context, bin string) (*pluginv1.DescribeResponse, error) {
		// Asking a binary what it provides starts and stops it; its
		// failures come back as errors, its chatter is not news.
		return host.Describe(ctx, bin, hclog.NewNullLogger())
	}, opts...)
}

// PluginCatalog is the plugin binaries an exporter started with the same
// PluginDirs would find, for listing and inspecting them (jw plugins).
type PluginCatalog struct{ c *plugins.Catalog }

// NewPluginCatalog opens the catalog an exporter with PluginDirs dirs and
// Python python (Options.Python; "" for the default) searches. Binaries
// and the interpreter are asked what they provide when first needed.
func NewPluginCatalog(dirs []string, python string) *PluginCatalog {
	return &PluginCatalog{c: newCatalog(dirs, plugins.WithPython(python))}
}

// SearchPath is the directories searched, in order.
func (p *PluginCatalog) SearchPath() []string { return p.c.Dirs() }

// PluginBinary is one plugin binary, as the catalog knows it.
type PluginBinary struct {
	Path       string
	Version    string // the binary's own version
	SDKVersion string // the SDK it was built with
	// Protocol is the plugin protocol it speaks, "major.minor";
	// ProtocolNewer says the minor version is newer than this exporter's
	// (accepted; what it adds is not used).
	Protocol      string
	ProtocolNewer bool
	SHA256        string // of its content, as an instance's "sha256:" pin takes it
	// Package is, for a Python driver class, the distribution that installs
	// it (Path is then the interpreter and Version the package's version).
	Package string
}

// PluginMethod is a method of a driver type.
type PluginMethod struct {
	Name        string
	Kind        string // "unary", "streaming" or "byte stream"
	Params      []PluginParam
	Variadic    bool   // the last parameter takes any number of arguments
	Result      string // the JSON type of the result
	Description string
}

// PluginParam is a parameter of a method.
type PluginParam struct {
	Name    string          // "" when the driver does not name it
	Type    string          // its JSON type: "integer", "string", ...
	Default json.RawMessage // the value used when it is left out, as JSON; nil when it is required
}

// PluginConfigKey is a key of a driver type's config.
type PluginConfigKey struct {
	Name, Type, Description string
}

// PluginType is a driver type that a plugin binary provides.
type PluginType struct {
	Name, Description string
	Client            string // the client class a Jumpstarter client loads for it
	Aliases           []string
	Exclusive         bool // an instance owns its device: on a swap the old process stops first
	Methods           []PluginMethod
	Config            []PluginConfigKey
	Binary            PluginBinary
	// Shadowed says another binary provides the type and is used without
	// pins; Shadows lists (in Inspect only) the binaries this one shadows.
	Shadowed bool
	Shadows  []PluginBinary
}

// PluginDuplicate is a set of type names that several binaries provide.
type PluginDuplicate struct {
	Names    []string
	Binaries []PluginBinary // the one used without pins first
}

// PluginFailure is a binary that could not be asked what it provides.
type PluginFailure struct {
	Binary string
	Err    error
}

// PluginList is what the search path holds.
type PluginList struct {
	SearchPath []string
	Types      []PluginType // by name; for each, the binary used without pins first
	Duplicates []PluginDuplicate
	Failed     []PluginFailure

	// Python is the interpreter asked for Python driver classes, and
	// PythonErr why it could not be asked; PythonNamed says it was named
	// rather than the default. PythonTypes are the classes its installed
	// packages announce (Shadowed: a binary provides the type and wins
	// unless an instance says plugin: python).
	Python      string
	PythonErr   error
	PythonNamed bool
	PythonTypes []PluginType
}

func binaryOf(e *plugins.Entry) PluginBinary {
	b := PluginBinary{Path: e.Binary, Version: e.Info.GetVersion(), SDKVersion: e.Info.GetSdkVersion(),
		Protocol: e.Protocol(), ProtocolNewer: e.NewerProtocol(), SHA256: e.SHA256}
	if e.Python != nil {
		b.Package, b.Version = e.Python.Package, e.Python.Version
	}
	return b
}

func typeOf(e *plugins.Entry, t *pluginv1.DriverType) PluginType {
	pt := PluginType{Name: t.Name, Description: t.Description, Client: t.Client, Aliases: t.Aliases,
		Exclusive: t.Exclusive, Binary: binaryOf(e)}
	for _, m := range t.Methods {
		pm := PluginMethod{Name: m.Name, Kind: pluginMethodKind(m.Kind), Params: []PluginParam{},
			Variadic: m.Variadic, Result: m.Result, Description: m.Description}
		for i, typ := range m.Params {
			p := PluginParam{Type: typ}
			if i < len(m.ParamInfo) {
				p.Name = m.ParamInfo[i].Name
				if def := m.ParamInfo[i].Default; def != nil {
					if b, err := def.MarshalJSON(); err == nil {
						p.Default = b
					}
				}
			}
			pm.Params = append(pm.Params, p)
		}
		pt.Methods = append(pt.Methods, pm)
	}
	for _, k := range t.Config {
		pt.Config = append(pt.Config, PluginConfigKey{Name: k.Name, Type: k.Type, Description: k.Description})
	}
	return pt
}

func pluginMethodKind(k pluginv1.MethodKind) string {
	switch k {
	case pluginv1.MethodKind_METHOD_KIND_STREAMING:
		return "streaming"
	case pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM:
		return "byte stream"
	}
	return "unary"
}

// List scans the search path: every driver type of every binary, the
// types several binaries provide, and the binaries that failed.
func (p *PluginCatalog) List(ctx context.Context) PluginList {
	entries, failures := p.c.Entries(ctx)
	l := PluginList{SearchPath: p.c.Dirs()}
	for _, e := range entries {
		for _, t := range e.Info.GetTypes() {
			used, _, _ := p.c.Lookup(ctx, t.Name, plugins.Pin{})
			pt := typeOf(e, t)
			pt.Shadowed = used != e
			l.Types = append(l.Types, pt)
		}
	}
	slices.SortStableFunc(l.Types, func(a, b PluginType) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		switch {
		case a.Shadowed == b.Shadowed:
			return -plugins.Newer(a.Binary.Version, b.Binary.Version)
		case b.Shadowed:
			return -1
		}
		return 1
	})
	for _, d := range p.c.Duplicates(ctx) {
		pd := PluginDuplicate{Names: d.Names}
		for _, e := range d.Entries {
			pd.Binaries = append(pd.Binaries, binaryOf(e))
		}
		l.Duplicates = append(l.Duplicates, pd)
	}
	for _, f := range failures {
		l.Failed = append(l.Failed, PluginFailure{Binary: f.Binary, Err: f.Err})
	}
	l.Python, _ = p.c.Interpreter()
	l.PythonNamed = p.c.PythonNamed()
	py, err := p.c.PythonEntries(ctx)
	l.PythonErr = err
	for _, e := range py {
		for _, t := range e.Info.GetTypes() {
			pt := typeOf(e, t)
			pt.Shadowed = p.c.ProvidedByBinary(ctx, t.Name)
			l.PythonTypes = append(l.PythonTypes, pt)
		}
	}
	return l
}

// Inspect finds the driver type name (a name or an alias) as an exporter
// would without pins, with the binaries it shadows.
//
// "python:CLASS" names the Python class even when a binary provides a type
// of that name.
func (p *PluginCatalog) Inspect(ctx context.Context, name string) (*PluginType, error) {
	var (
		e   *plugins.Entry
		t   *pluginv1.DriverType
		err error
	)
	if class, ok := strings.CutPrefix(name, plugins.PythonPlugin+":"); ok {
		e, t, err = p.c.LookupPython(ctx, class, "", plugins.Pin{})
	} else {
		e, t, err = p.c.Lookup(ctx, name, plugins.Pin{})
	}
	if err != nil {
		return nil, err
	}
	pt := typeOf(e, t)
	for _, d := range p.c.Duplicates(ctx) {
		if slices.Contains(d.Names, t.Name) {
			for _, o := range d.Entries[1:] {
				pt.Shadows = append(pt.Shadows, binaryOf(o))
			}
		}
	}
	return &pt, nil
}
