package main

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

func newTreeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tree",
		Short: "Show the exporter's drivers and their methods",
		Long: `Show the exporter's driver tree: each driver with its name, type and description, and
its methods with their parameters (name type = default) and descriptions. Methods that are not plain calls are marked:
"(streaming)" results arrive one by one, "(stream)" is a byte stream.
A driver whose process is not running is marked [restarting] or [failed].
With -o json the tree is printed as one JSON document (docs/cli-json.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, tree, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if g.output == outputJSON {
				return writeJSON(out, treeDoc(tree))
			}
			_, err = io.WriteString(out, renderTree(tree))
			return err
		},
	}
}

// renderTree draws the tree for a terminal:
//
//	lab-1: Demo exporter
//	├── power (power): Bench supply
//	│     on                Power on the device
//	│     read (streaming)  Stream power readings
//	└── dut (composite)
//	    └── power (power): DUT power
func renderTree(t *client.Tree) string {
	var b strings.Builder
	name := t.Name
	if name == "" {
		name = "exporter"
	}
	b.WriteString(name)
	if desc := oneLine(t.Root.Description); desc != "" {
		b.WriteString(": " + desc)
	}
	b.WriteString(stateMark(t.Root) + "\n")
	renderBody(&b, t.Root, "")
	return b.String()
}

// renderBody writes d's methods and children; prefix continues the lines of d's ancestors.
func renderBody(b *strings.Builder, d *client.Driver, prefix string) {
	methodPrefix := prefix + "  "
	if len(d.Children) > 0 {
		methodPrefix = prefix + "│ "
	}
	renderMethods(b, d, methodPrefix)
	for i, c := range d.Children {
		branch, cont := "├── ", "│   "
		if i == len(d.Children)-1 {
			branch, cont = "└── ", "    "
		}
		b.WriteString(prefix + branch + c.Name)
		if typ := c.Type(); typ != "" {
			if v := c.Labels["jumpwire.dev/version"]; v != "" {
				typ += " " + v // the plugin binary's version
			}
			b.WriteString(" (" + typ + ")")
		}
		if desc := oneLine(c.Description); desc != "" {
			b.WriteString(": " + desc)
		}
		b.WriteString(stateMark(c) + "\n")
		renderBody(b, c, prefix+cont)
	}
}

// renderMethods writes one line per method: name, kind unless unary, description, in columns.
func renderMethods(b *strings.Builder, d *client.Driver, prefix string) {
	names := d.MethodNames()
	heads := make([]string, len(names))
	width := 0
	for i, m := range names {
		heads[i] = m
		if sig, ok := d.Signature(m); ok && len(sig.Params) > 0 {
			heads[i] = sig.Format(m)
		}
		if kind := d.MethodKind(m); kind != client.KindUnary {
			heads[i] += " (" + kind + ")"
		}
		width = max(width, utf8.RuneCountInString(heads[i]))
	}
	for i, m := range names {
		line := heads[i]
		if desc := oneLine(d.Methods[m]); desc != "" {
			line += strings.Repeat(" ", width-utf8.RuneCountInString(line)+2) + desc
		}
		b.WriteString(prefix + line + "\n")
	}
}

func stateMark(d *client.Driver) string {
	switch s := d.State(); s {
	case "", "running":
		return ""
	default:
		return " [" + s + "]"
	}
}

// oneLine keeps the first line of a (docstring-like) description.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

type treeJSON struct {
	UUID   string            `json:"uuid"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Motd   string            `json:"motd"`
	Root   driverJSON        `json:"root"`
}

type driverJSON struct {
	UUID        string            `json:"uuid"`
	Name        string            `json:"name"`
	Path        string            `json:"path"`
	Type        string            `json:"type"`
	Client      string            `json:"client"`
	Description string            `json:"description"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Methods     []methodJSON      `json:"methods"`
	Children    []driverJSON      `json:"children"`
}

type methodJSON struct {
	Name        string      `json:"name"`
	Kind        string      `json:"kind"`
	Description string      `json:"description"`
	Params      []paramJSON `json:"params"`   // [] for byte streams and exporters that do not say
	Variadic    bool        `json:"variadic"` // the last parameter repeats
	Result      string      `json:"result"`   // the result's JSON type, "" when not reported
}

func treeDoc(t *client.Tree) treeJSON {
	labels := t.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return treeJSON{UUID: t.UUID, Name: t.Name, Labels: labels, Motd: t.Motd, Root: driverDoc(t.Root)}
}

func driverDoc(d *client.Driver) driverJSON {
	doc := driverJSON{
		UUID: d.UUID, Name: d.Name, Path: d.Path, Type: d.Type(), Client: d.ClientClass(),
		Description: d.Description, State: d.State(), Labels: d.Labels,
		Methods: []methodJSON{}, Children: []driverJSON{},
	}
	for _, m := range d.MethodNames() {
		sig, _ := d.Signature(m)
		doc.Methods = append(doc.Methods, methodJSON{Name: m, Kind: d.MethodKind(m), Description: d.Methods[m],
			Params: paramDocs(sig), Variadic: sig.Variadic, Result: sig.Result})
	}
	for _, c := range d.Children {
		doc.Children = append(doc.Children, driverDoc(c))
	}
	return doc
}
