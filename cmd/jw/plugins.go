//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
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

The search path is the --plugin-dir directories, then those in $` + exporter.PluginPathEnv + `,
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
				return listPlugins(cmd.Context(), cmd.OutOrStdout(), exporter.NewPluginCatalog(dirs, python), g.output == outputJSON)
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
				return inspectPlugin(cmd.Context(), cmd.OutOrStdout(), exporter.NewPluginCatalog(dirs, python), args[0], g.output == outputJSON)
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
	if d := exporter.PluginCacheDir(); d != "" {
		return d
	}
	return "$XDG_CACHE_HOME/jumpwire/plugins"
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
	Python     string            `json:"python"`       // the interpreter asked
	PythonErr  string            `json:"python_error"` // why it could not be asked
	Classes    []pythonRow       `json:"python_types"`

	pythonNamed bool // --python was given: say why it has no classes
}

// collectPlugins scans the search path and lists what it holds.
func collectPlugins(ctx context.Context, c *exporter.PluginCatalog) pluginList {
	found := c.List(ctx)
	l := pluginList{SearchPath: nonNilStrings(found.SearchPath), Types: []pluginRow{}, Duplicates: []pluginDuplicate{}, Failed: []pluginFailure{}}
	for _, t := range found.Types { // by type; the binary used without pins first
		b := t.Binary
		l.Types = append(l.Types, pluginRow{
			Type: t.Name, Aliases: nonNilStrings(t.Aliases), Binary: b.Path,
			Version: b.Version, SDKVersion: b.SDKVersion,
			Protocol: b.Protocol, ProtocolNewer: b.ProtocolNewer, SHA256: b.SHA256,
			Shadowed: t.Shadowed,
		})
	}
	for _, d := range found.Duplicates {
		pd := pluginDuplicate{Names: d.Names}
		for _, b := range d.Binaries {
			pd.Binaries = append(pd.Binaries, duplicateOf(b))
		}
		l.Duplicates = append(l.Duplicates, pd)
	}
	for _, f := range found.Failed {
		l.Failed = append(l.Failed, pluginFailure{Binary: f.Binary, Error: f.Err.Error()})
	}
	l.Python, l.pythonNamed, l.Classes = found.Python, found.PythonNamed, []pythonRow{}
	if found.PythonErr != nil {
		l.PythonErr = found.PythonErr.Error()
	}
	for _, t := range found.PythonTypes {
		r := pythonRow{Type: t.Name, Package: t.Binary.Package, Version: t.Binary.Version, SHA256: t.Binary.SHA256,
			Methods: []string{}, Shadowed: t.Shadowed}
		for _, m := range t.Methods {
			r.Methods = append(r.Methods, m.Name)
		}
		l.Classes = append(l.Classes, r)
	}
	return l
}

func duplicateOf(b exporter.PluginBinary) duplicateBinary {
	return duplicateBinary{Binary: b.Path, Version: b.Version, SHA256: b.SHA256}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// listPlugins prints the plugin list as a table and sections, or as JSON.
func listPlugins(ctx context.Context, out io.Writer, c *exporter.PluginCatalog, asJSON bool) error {
	l := collectPlugins(ctx, c)
	if asJSON {
		return writePluginJSON(out, l)
	}
	if len(l.Types) == 0 && len(l.Failed) == 0 {
		if _, err := fmt.Fprintf(out, "no plugin binaries found (searched %s; add directories with --plugin-dir or %s)\n",
			strings.Join(l.SearchPath, ", "), exporter.PluginPathEnv); err != nil {
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
		fmt.Fprintf(out, "\n(newer): the binary speaks a newer plugin protocol than this jw (%s); it is accepted, and what the newer protocol adds is not used\n",
			exporter.PluginProtocol())
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

// inspectPlugin prints one driver type: its binary, methods and config keys.
func inspectPlugin(ctx context.Context, out io.Writer, c *exporter.PluginCatalog, name string, asJSON bool) error {
	t, err := c.Inspect(ctx, name)
	if err != nil {
		return err
	}
	b := t.Binary
	d := typeDoc{
		Type: t.Name, Description: t.Description, Client: t.Client, Aliases: nonNilStrings(t.Aliases), Exclusive: t.Exclusive,
		Binary: b.Path, Version: b.Version, SDKVersion: b.SDKVersion,
		Protocol: b.Protocol, ProtocolNewer: b.ProtocolNewer, SHA256: b.SHA256,
		Methods: []methodDoc{}, Config: []configKeyDoc{}, AlsoIn: []duplicateBinary{}, Package: b.Package,
	}
	for _, m := range t.Methods {
		sig := pluginSignature(m)
		d.Methods = append(d.Methods, methodDoc{Name: m.Name, Kind: m.Kind, Params: paramDocs(sig),
			Variadic: m.Variadic, Result: m.Result, Description: m.Description, sig: sig})
	}
	for _, k := range t.Config {
		d.Config = append(d.Config, configKeyDoc{Name: k.Name, Type: k.Type, Description: k.Description})
	}
	for _, o := range t.Shadows {
		d.AlsoIn = append(d.AlsoIn, duplicateOf(o))
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
		proto += fmt.Sprintf(", newer than this jw's %s: accepted", exporter.PluginProtocol())
	}
	if d.Package != "" {
		fmt.Fprintf(tw, "  python:\t%s\n", d.Binary)
		fmt.Fprintf(tw, "  package:\t%s %s\n", d.Package, dashIfEmpty(d.Version))
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

// pluginSignature is what a plugin describes of method m, in the client's terms.
func pluginSignature(m exporter.PluginMethod) client.Signature {
	sig := client.Signature{Params: []client.Param{}, Variadic: m.Variadic, Result: m.Result}
	for _, p := range m.Params {
		sig.Params = append(sig.Params, client.Param{Name: p.Name, Type: p.Type, Default: p.Default})
	}
	return sig
}

// completeTypes lists the driver types (and aliases) on the plugin search path.
func completeTypes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	dirs, _ := cmd.Flags().GetStringArray("plugin-dir")
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second) // new binaries are asked once
	defer cancel()
	var comps []string
	python, _ := cmd.Flags().GetString("python")
	for _, t := range exporter.NewPluginCatalog(dirs, python).List(ctx).Types {
		for _, name := range append([]string{t.Name}, t.Aliases...) {
			if strings.HasPrefix(name, toComplete) && !slices.ContainsFunc(comps, func(c string) bool {
				return strings.HasPrefix(c, name+"\t")
			}) {
				comps = append(comps, withDescription(name, oneLine(t.Description)))
			}
		}
	}
	return comps, cobra.ShellCompDirectiveNoFileComp
}
