package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/plugins"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// shortSHA is how many hex digits of a sha256 the text output shows.
const shortSHA = 12

func newPluginsCmd(g *globals) *cobra.Command {
	var (
		dirs   []string
		python string
	)
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List and inspect the driver plugins on the search path",
		Long: `List the driver plugin binaries an exporter would find, and what each provides.

The search path is the --plugin-dir directories, then those in $` + plugins.PathEnv + `,
then the plugins directory next to jw. A binary is asked what it provides the first time its
content (its sha256) is seen; the answer is cached in ` + cacheDirHelp() + `.
When several binaries provide a type, an exporter uses the newest version, unless the
instance pins one with "version:" or "sha256:".

Python driver classes (upstream Jumpstarter's drivers, or yours) are types too: a type
such as jumpstarter_driver_shell.driver.Shell that no binary provides runs in the Python
plugin host of the interpreter --python names (default python3 on PATH).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringArrayVar(&dirs, "plugin-dir", nil, "directory of plugin binaries, searched first (repeatable)")
	cmd.PersistentFlags().StringVar(&python, "python", "", "Python interpreter or virtual environment for Python driver types (default python3 on PATH)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List every driver type on the plugin search path",
			Long: `List every driver type on the plugin search path: the binary providing it, the
binary's version, the SDK it was built with, the plugin protocol it speaks (major.minor),
the binary's sha256 (in full with -o json, as an instance's "sha256:" pin takes it) and
the type's aliases. Then the binaries providing the same type (duplicates) and those
that could not be asked what they provide. Then the Python driver classes the installed
packages of the --python interpreter announce (their package, version, sha256 and methods).`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := g.checkOutput(); err != nil {
					return err
				}
				return listPlugins(cmd.Context(), cmd.OutOrStdout(), newPluginCatalog(dirs, python), g.output == outputJSON)
			},
		},
		&cobra.Command{
			Use:   "inspect TYPE",
			Short: "Show a driver type's methods and config keys",
			Long: `Show what a driver type (a name or an alias) offers: its description, the client a
Jumpstarter client loads for it, its methods (name, kind, parameters, result) and the keys
its config takes. The binary shown is the one an exporter uses without pins. A Python
class is shown with its package; "python:TYPE" shows the Python class even when a binary
provides TYPE.`,
			Args: pluginArgs(1, "inspect needs a driver TYPE (see \"jw plugins list\")"),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := g.checkOutput(); err != nil {
					return err
				}
				return inspectPlugin(cmd.Context(), cmd.OutOrStdout(), newPluginCatalog(dirs, python), args[0], g.output == outputJSON)
			},
		},
	)
	return cmd
}

// pluginArgs accepts exactly n arguments, else says what is missing.
func pluginArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s", msg)
		}
		return nil
	}
}

func cacheDirHelp() string {
	if d := plugins.CacheDir(); d != "" {
		return d
	}
	return "$XDG_CACHE_HOME/jumpwire/plugins"
}

// newPluginCatalog is the catalog an exporter started with --plugin-dir dirs
// would search.
func newPluginCatalog(dirs []string, python string) *plugins.Catalog {
	return plugins.New(plugins.SearchPath(dirs), func(ctx context.Context, bin string) (*pluginv1.DescribeResponse, error) {
		return host.Describe(ctx, bin, hclog.NewNullLogger())
	}, plugins.WithPython(python))
}

// pluginRow is one driver type of one binary, as `jw plugins list` shows it.
type pluginRow struct {
	Type          string   `json:"type"`
	Aliases       []string `json:"aliases"`
	Binary        string   `json:"binary"`
	Version       string   `json:"version"`
	SDKVersion    string   `json:"sdk_version"`
	Protocol      string   `json:"protocol"`
	ProtocolNewer bool     `json:"protocol_newer"` // newer than this jw's: accepted, additions unused
	SHA256        string   `json:"sha256"`
	Shadowed      bool     `json:"shadowed"` // another binary provides the type and wins without pins
}

type pluginFailure struct {
	Binary string `json:"binary"`
	Error  string `json:"error"`
}

type duplicateBinary struct {
	Binary  string `json:"binary"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

type pluginDuplicate struct {
	Names    []string          `json:"names"`
	Binaries []duplicateBinary `json:"binaries"` // the one used without pins first
}

// pythonRow is one Python driver class, as `jw plugins list` shows it.
type pythonRow struct {
	Type     string   `json:"type"`
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	SHA256   string   `json:"sha256"`
	Methods  []string `json:"methods"`
	Shadowed bool     `json:"shadowed"` // a binary provides the type and wins unless an instance says plugin: python
}

type pluginList struct {
	SearchPath []string          `json:"search_path"`
	Types      []pluginRow       `json:"types"`
	Duplicates []pluginDuplicate `json:"duplicates"`
	Failed     []pluginFailure   `json:"failed"`
	Python     string            `json:"python,omitempty"`       // the interpreter asked
	PythonErr  string            `json:"python_error,omitempty"` // why it could not be asked
	Classes    []pythonRow       `json:"python_types,omitempty"`

	pythonNamed bool // --python was given: say why it has no classes
}

// collectPlugins scans the search path and lists what it holds.
func collectPlugins(ctx context.Context, c *plugins.Catalog) pluginList {
	entries, failures := c.Entries(ctx)
	l := pluginList{SearchPath: nonNilStrings(c.Dirs()), Types: []pluginRow{}, Duplicates: []pluginDuplicate{}, Failed: []pluginFailure{}}
	for _, e := range entries {
		for _, t := range e.Info.GetTypes() {
			used, _, _ := c.Lookup(ctx, t.Name, plugins.Pin{})
			l.Types = append(l.Types, pluginRow{
				Type: t.Name, Aliases: nonNilStrings(t.Aliases), Binary: e.Binary,
				Version: e.Info.GetVersion(), SDKVersion: e.Info.GetSdkVersion(),
				Protocol: e.Protocol(), ProtocolNewer: e.NewerProtocol(), SHA256: e.SHA256,
				Shadowed: used != e,
			})
		}
	}
	// By type; the binary used without pins first.
	slices.SortStableFunc(l.Types, func(a, b pluginRow) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		switch {
		case a.Shadowed == b.Shadowed:
			return -plugins.Newer(a.Version, b.Version)
		case b.Shadowed:
			return -1
		}
		return 1
	})
	for _, d := range c.Duplicates(ctx) {
		pd := pluginDuplicate{Names: d.Names}
		for _, e := range d.Entries {
			pd.Binaries = append(pd.Binaries, duplicateBinary{Binary: e.Binary, Version: e.Info.GetVersion(), SHA256: e.SHA256})
		}
		l.Duplicates = append(l.Duplicates, pd)
	}
	for _, f := range failures {
		l.Failed = append(l.Failed, pluginFailure{Binary: f.Binary, Error: f.Error()})
	}
	l.Python, _ = c.Interpreter()
	l.pythonNamed = c.PythonNamed()
	py, err := c.PythonEntries(ctx)
	if err != nil {
		l.PythonErr = err.Error()
	}
	for _, e := range py {
		t := e.Info.Types[0]
		r := pythonRow{Type: t.Name, Package: e.Python.Package, Version: e.Python.Version, SHA256: e.SHA256,
			Methods: []string{}, Shadowed: c.ProvidedByBinary(ctx, t.Name)}
		for _, m := range t.Methods {
			r.Methods = append(r.Methods, m.Name)
		}
		l.Classes = append(l.Classes, r)
	}
	return l
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// listPlugins prints the plugin list as a table and sections, or as JSON.
func listPlugins(ctx context.Context, out io.Writer, c *plugins.Catalog, asJSON bool) error {
	l := collectPlugins(ctx, c)
	if asJSON {
		return writePluginJSON(out, l)
	}
	if len(l.Types) == 0 && len(l.Failed) == 0 {
		if _, err := fmt.Fprintf(out, "no plugin binaries found (searched %s; add directories with --plugin-dir or %s)\n",
			strings.Join(l.SearchPath, ", "), plugins.PathEnv); err != nil {
			return err
		}
		return listPython(out, l)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	newer := false
	if len(l.Types) > 0 {
		fmt.Fprintln(tw, "TYPE\tBINARY\tVERSION\tSDK\tPROTOCOL\tSHA256\tALIASES")
	}
	for _, r := range l.Types {
		typ, proto := r.Type, r.Protocol
		if r.Shadowed {
			typ += " (shadowed)"
		}
		if r.ProtocolNewer {
			proto += " (newer)"
			newer = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", typ, r.Binary, dashIfEmpty(r.Version), dashIfEmpty(r.SDKVersion),
			proto, r.SHA256[:shortSHA], dashIfEmpty(strings.Join(r.Aliases, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if newer {
		fmt.Fprintf(out, "\n(newer): the binary speaks a newer plugin protocol than this jw (%d.%d); it is accepted, and what the newer protocol adds is not used\n",
			protocol.Version, protocol.Minor)
	}
	if len(l.Duplicates) > 0 {
		fmt.Fprintln(out, "\nDuplicates: the first binary is used; pin another with \"version:\" or \"sha256:\" in the instance")
		for _, d := range l.Duplicates {
			fmt.Fprintf(out, "  %s:\n", strings.Join(d.Names, ", "))
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			for _, b := range d.Binaries {
				fmt.Fprintf(tw, "    %s\t%s\tsha256 %s\n", b.Binary, dashIfEmpty(b.Version), b.SHA256[:shortSHA])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if len(l.Failed) > 0 {
		fmt.Fprintln(out, "\nFailed: these binaries could not be asked what they provide")
		for _, f := range l.Failed {
			fmt.Fprintf(out, "  %s\n", f.Error)
		}
	}
	return listPython(out, l)
}

// listPython prints the Python section of the plugin list.
func listPython(out io.Writer, l pluginList) error {
	if l.PythonErr != "" {
		if !l.pythonNamed {
			return nil // no Python environment set up: nothing to say
		}
		_, err := fmt.Fprintf(out, "\nPython driver classes: none (%s)\n", l.PythonErr)
		return err
	}
	fmt.Fprintf(out, "\nPython driver classes (%s; any importable class may be named, these are the ones installed packages announce):\n", l.Python)
	if len(l.Classes) == 0 {
		_, err := fmt.Fprintln(out, "  none")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tPACKAGE\tVERSION\tSHA256\tMETHODS")
	for _, r := range l.Classes {
		typ := r.Type
		if r.Shadowed {
			typ += " (a binary provides it: plugin: python to use this)"
		}
		sum := r.SHA256
		if len(sum) > shortSHA {
			sum = sum[:shortSHA]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", typ, dashIfEmpty(r.Package), dashIfEmpty(r.Version), dashIfEmpty(sum),
			dashIfEmpty(strings.Join(r.Methods, ", ")))
	}
	return tw.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writePluginJSON(out io.Writer, v any) error { return writeJSON(out, v) }

type methodDoc struct {
	Name        string      `json:"name"`
	Kind        string      `json:"kind"` // unary, streaming or byte_stream
	Params      []paramJSON `json:"params"`
	Variadic    bool        `json:"variadic"`
	Result      string      `json:"result"`
	Description string      `json:"description"`

	sig client.Signature
}

type configKeyDoc struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

type typeDoc struct {
	Type          string            `json:"type"`
	Description   string            `json:"description"`
	Client        string            `json:"client"`
	Aliases       []string          `json:"aliases"`
	Exclusive     bool              `json:"exclusive"`
	Binary        string            `json:"binary"`
	Version       string            `json:"version"`
	SDKVersion    string            `json:"sdk_version"`
	Protocol      string            `json:"protocol"`
	ProtocolNewer bool              `json:"protocol_newer"`
	SHA256        string            `json:"sha256"`
	Methods       []methodDoc       `json:"methods"`
	Config        []configKeyDoc    `json:"config"`
	AlsoIn        []duplicateBinary `json:"also_provided_by"`  // shadowed binaries providing the same type
	Package       string            `json:"package,omitempty"` // for a Python class: its distribution
}

// methodKind names a method kind for people and, with "_" for " ", for JSON.
func methodKind(k pluginv1.MethodKind) string {
	switch k {
	case pluginv1.MethodKind_METHOD_KIND_STREAMING:
		return "streaming"
	case pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM:
		return "byte stream"
	}
	return "unary"
}

// inspectPlugin prints one driver type: its binary, methods and config keys.
func inspectPlugin(ctx context.Context, out io.Writer, c *plugins.Catalog, name string, asJSON bool) error {
	var (
		e   *plugins.Entry
		t   *pluginv1.DriverType
		err error
	)
	if class, ok := strings.CutPrefix(name, plugins.PythonPlugin+":"); ok {
		e, t, err = c.LookupPython(ctx, class, "", plugins.Pin{})
	} else {
		e, t, err = c.Lookup(ctx, name, plugins.Pin{})
	}
	if err != nil {
		return err
	}
	d := typeDoc{
		Type: t.Name, Description: t.Description, Client: t.Client, Aliases: nonNilStrings(t.Aliases), Exclusive: t.Exclusive,
		Binary: e.Binary, Version: e.Info.GetVersion(), SDKVersion: e.Info.GetSdkVersion(),
		Protocol: e.Protocol(), ProtocolNewer: e.NewerProtocol(), SHA256: e.SHA256,
		Methods: []methodDoc{}, Config: []configKeyDoc{}, AlsoIn: []duplicateBinary{},
	}
	if e.Python != nil {
		d.Package = e.Python.Package
		d.SDKVersion = e.Info.GetSdkVersion()
	}
	for _, m := range t.Methods {
		sig := pluginSignature(m)
		d.Methods = append(d.Methods, methodDoc{Name: m.Name, Kind: methodKind(m.Kind), Params: paramDocs(sig),
			Variadic: m.Variadic, Result: m.Result, Description: m.Description, sig: sig})
	}
	for _, k := range t.Config {
		d.Config = append(d.Config, configKeyDoc{Name: k.Name, Type: k.Type, Description: k.Description})
	}
	for _, dup := range c.Duplicates(ctx) {
		if slices.Contains(dup.Names, t.Name) {
			for _, o := range dup.Entries[1:] {
				d.AlsoIn = append(d.AlsoIn, duplicateBinary{Binary: o.Binary, Version: o.Info.GetVersion(), SHA256: o.SHA256})
			}
		}
	}
	if asJSON {
		for i := range d.Methods {
			d.Methods[i].Kind = strings.ReplaceAll(d.Methods[i].Kind, " ", "_")
		}
		return writePluginJSON(out, d)
	}
	return renderPluginType(out, d)
}

func renderPluginType(out io.Writer, d typeDoc) error {
	head := d.Type
	if desc := oneLine(d.Description); desc != "" {
		head += ": " + desc
	}
	fmt.Fprintln(out, head)
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	proto := d.Protocol
	if d.ProtocolNewer {
		proto += fmt.Sprintf(", newer than this jw's %d.%d: accepted", protocol.Version, protocol.Minor)
	}
	if d.Package != "" || d.SDKVersion == "pyhost" {
		fmt.Fprintf(tw, "  python:\t%s\n", d.Binary)
		fmt.Fprintf(tw, "  package:\t%s %s\n", dashIfEmpty(d.Package), dashIfEmpty(d.Version))
	} else {
		fmt.Fprintf(tw, "  binary:\t%s\n", d.Binary)
		fmt.Fprintf(tw, "  version:\t%s (sdk %s, plugin protocol %s)\n", dashIfEmpty(d.Version), dashIfEmpty(d.SDKVersion), proto)
	}
	fmt.Fprintf(tw, "  sha256:\t%s\n", d.SHA256)
	fmt.Fprintf(tw, "  client:\t%s\n", dashIfEmpty(d.Client))
	fmt.Fprintf(tw, "  aliases:\t%s\n", dashIfEmpty(strings.Join(d.Aliases, ", ")))
	if d.Exclusive {
		fmt.Fprintf(tw, "  exclusive:\tyes (an instance owns its device: on a swap, the old process stops first)\n")
	}
	for _, o := range d.AlsoIn {
		fmt.Fprintf(tw, "  shadows:\t%s (%s, sha256 %s)\n", o.Binary, dashIfEmpty(o.Version), o.SHA256[:shortSHA])
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nMethods:")
	if len(d.Methods) == 0 {
		fmt.Fprintln(out, "  none")
	} else {
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tKIND\tPARAMS\tRESULT\tDESCRIPTION")
		for _, m := range d.Methods {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Name, m.Kind, dashIfEmpty(m.sig.ParamList()),
				dashIfEmpty(m.Result), oneLine(m.Description))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(out, "\nConfig:")
	if len(d.Config) == 0 {
		_, err := fmt.Fprintln(out, "  no keys")
		return err
	}
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tDESCRIPTION")
	for _, k := range d.Config {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", k.Name, dashIfEmpty(k.Type), oneLine(k.Description))
	}
	return tw.Flush()
}
