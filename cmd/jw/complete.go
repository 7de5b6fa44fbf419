package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

// completionTimeout bounds how long completion waits for the exporter: a shell must not hang
// on a <TAB>. An exporter that does not answer in time completes nothing.
const completionTimeout = 700 * time.Millisecond

// addCompletions teaches shell completion (jw completion bash|zsh|fish) the driver paths,
// methods and parameter names of the exporter named by --host, when it answers quickly, and
// the driver types on the plugin search path.
func addCompletions(root *cobra.Command, g *globals) {
	noFiles := cobra.ShellCompDirectiveNoFileComp
	root.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		tree := g.completionTree(cmd)
		if tree == nil {
			return nil, noFiles
		}
		d, rest := tree.Resolve(args)
		switch {
		case len(rest) == 0 && len(args) == 0:
			return append(drivers(tree.Root, toComplete), methods(d, toComplete, "")...), noFiles
		case len(rest) == 0:
			return append(children(d, toComplete), methods(d, toComplete, "")...), noFiles
		case d == tree.Root && len(args) > 0 && !d.HasMethod(rest[0]):
			return nil, noFiles
		}
		return arguments(d, rest[0], rest[1:], toComplete)
	}
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputText, outputJSON}, noFiles))
	escapes := cobra.FixedCompletions([]string{"^]\tCtrl-]", "^B\tCtrl-B (the default)", "^A\tCtrl-A", "^_\tCtrl-_"}, noFiles)
	_ = root.RegisterFlagCompletionFunc("escape", escapes)

	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "call":
			cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				tree := g.completionTree(cmd)
				if tree == nil {
					return nil, noFiles
				}
				if len(args) == 0 {
					return drivers(tree.Root, toComplete), noFiles
				}
				d, err := tree.Lookup(args[0])
				if err != nil {
					return nil, noFiles
				}
				if len(args) == 1 {
					return methods(d, toComplete, ""), noFiles
				}
				return arguments(d, args[1], args[2:], toComplete)
			}
		case "console", "pipe", "logs":
			cmd.ValidArgsFunction = g.completePath(func(d *client.Driver, args []string) []string {
				if cmd.Name() == "pipe" && len(args) == 1 {
					return methods(d, "", client.KindStream)
				}
				return nil
			})
		case "flash":
			cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return g.completeDriverPath(cmd, toComplete)
				}
				return nil, cobra.ShellCompDirectiveDefault // the image file
			}
		case "forward":
			for _, sub := range cmd.Commands() {
				sub.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
					if len(args) != 1 {
						return nil, cobra.ShellCompDirectiveDefault // the address or socket
					}
					return g.completeDriverPath(cmd, toComplete)
				}
			}
		case "plugins":
			for _, sub := range cmd.Commands() {
				if sub.Name() == "inspect" {
					sub.ValidArgsFunction = completeTypes
				}
			}
		}
		if cmd.Name() == "console" {
			_ = cmd.RegisterFlagCompletionFunc("escape", escapes)
		}
		if cmd.Flags().Lookup("method") != nil {
			_ = cmd.RegisterFlagCompletionFunc("method", func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				tree := g.completionTree(cmd)
				if tree == nil || len(args) == 0 {
					return nil, noFiles
				}
				d, err := tree.Lookup(args[len(args)-1])
				if err != nil {
					return nil, noFiles
				}
				return methods(d, "", client.KindStream), noFiles
			})
		}
	}
}

// completePath completes a command whose first argument is a driver path; more gives what may
// follow it.
func (g *globals) completePath(more func(d *client.Driver, args []string) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return g.completeDriverPath(cmd, toComplete)
		}
		tree := g.completionTree(cmd)
		if tree == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		d, err := tree.Lookup(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return more(d, args), cobra.ShellCompDirectiveNoFileComp
	}
}

func (g *globals) completeDriverPath(cmd *cobra.Command, toComplete string) ([]string, cobra.ShellCompDirective) {
	tree := g.completionTree(cmd)
	if tree == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return drivers(tree.Root, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completionTree reads the exporter's tree within completionTimeout; nil when there is no
// exporter, it does not answer in time, or the flags are wrong. Completion says nothing then.
func (g *globals) completionTree(cmd *cobra.Command) *client.Tree {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	opts, err := g.dialOptions(cmd)
	if err != nil {
		return nil
	}
	c, err := client.Dial(ctx, g.host, opts...)
	if err != nil {
		return nil
	}
	defer c.Close()
	tree, err := c.Tree(ctx)
	if err != nil {
		return nil
	}
	return tree
}

// drivers lists the dotted paths of every driver under root, with their descriptions.
func drivers(root *client.Driver, toComplete string) []string {
	var comps []string
	var walk func(d *client.Driver)
	walk = func(d *client.Driver) {
		for _, c := range d.Children {
			if strings.HasPrefix(c.Path, toComplete) {
				comps = append(comps, withDescription(c.Path, driverDescription(c)))
			}
			walk(c)
		}
	}
	walk(root)
	return comps
}

// children lists d's direct children, as the next word of the short form (jw dut power on).
func children(d *client.Driver, toComplete string) []string {
	var comps []string
	for _, c := range d.Children {
		if !strings.HasPrefix(c.Name, toComplete) {
			continue
		}
		comps = append(comps, withDescription(c.Name, driverDescription(c)))
	}
	return comps
}

func driverDescription(d *client.Driver) string {
	desc := d.Type()
	if s := oneLine(d.Description); s != "" {
		desc += ": " + s
	}
	return desc
}

// methods lists d's methods (of kind only, unless ""), with their signatures and descriptions.
func methods(d *client.Driver, toComplete, kind string) []string {
	var comps []string
	for _, m := range d.MethodNames() {
		if !strings.HasPrefix(m, toComplete) || kind != "" && d.MethodKind(m) != kind {
			continue
		}
		desc := oneLine(d.Methods[m])
		if sig, ok := d.Signature(m); ok && len(sig.Params) > 0 {
			desc = strings.TrimSpace(sig.Format(m) + " " + desc)
		}
		comps = append(comps, withDescription(m, desc))
	}
	return comps
}

// arguments completes the words after method: the names of the parameters not given yet
// (NAME=, for named arguments), and true/false as a boolean parameter's value.
func arguments(d *client.Driver, method string, given []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	sig, ok := d.Signature(method)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if name, _, isNamed := splitNamed(toComplete); isNamed {
		if i := paramIndex(sig, name); i >= 0 && sig.Params[i].Type == "boolean" {
			return []string{name + "=true", name + "=false"}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	used := map[string]bool{}
	positional := 0
	for _, w := range given {
		if name, _, isNamed := splitNamed(w); isNamed {
			used[name] = true
		} else {
			positional++
		}
	}
	var comps []string
	for i, p := range sig.Params {
		if p.Name == "" || i < positional || used[p.Name] || (sig.Variadic && i == len(sig.Params)-1) {
			continue
		}
		if strings.HasPrefix(p.Name+"=", toComplete) {
			comps = append(comps, withDescription(p.Name+"=", p.String()))
		}
	}
	if positional < len(sig.Params) && len(used) == 0 && sig.Params[positional].Type == "boolean" {
		comps = append(comps, "true", "false")
	}
	return comps, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeTypes lists the driver types (and aliases) on the plugin search path.
func completeTypes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	dirs, _ := cmd.Flags().GetStringArray("plugin-dir")
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second) // new binaries are asked once
	defer cancel()
	python, _ := cmd.Flags().GetString("python")
	entries, _ := newPluginCatalog(dirs, python).Entries(ctx)
	var comps []string
	for _, e := range entries {
		for _, t := range e.Info.GetTypes() {
			for _, name := range append([]string{t.Name}, t.Aliases...) {
				if strings.HasPrefix(name, toComplete) && !slices.ContainsFunc(comps, func(c string) bool {
					return strings.HasPrefix(c, name+"\t")
				}) {
					comps = append(comps, withDescription(name, oneLine(t.Description)))
				}
			}
		}
	}
	return comps, cobra.ShellCompDirectiveNoFileComp
}

// withDescription appends a description for the shells that show one (zsh, fish).
func withDescription(word, desc string) string {
	if desc == "" {
		return word
	}
	return word + "\t" + desc
}
