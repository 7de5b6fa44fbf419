package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

func newCallCmd(g *globals) *cobra.Command {
	var stream bool
	cmd := &cobra.Command{
		Use:   "call PATH METHOD [ARG...]",
		Short: "Call a method of a driver",
		Long: `Call METHOD of the driver at PATH (dotted, e.g. dut.power; "." or "" for the root).

Each ARG is a JSON value: true, 5, -1.5, null, "text", [1,2], {"a":1}. A word that is not valid
JSON is taken as a string, so 'jw call serial write hello' sends "hello". Put ARGs that start
with "-" after "--": jw call psu set_voltage -- -1

When the driver names its parameters ("jw tree" shows them), an ARG NAME=VALUE passes VALUE
to the parameter NAME: jw relay on channel=2 state=true. Named ARGs follow positional ones;
a parameter left out takes its default. A string containing "=" is then passed as JSON: '"a=b"'.

A unary method prints its result: nothing for null, a string as is, anything else as JSON.
A streaming method (or any method with --stream) prints each result on its own line as it
arrives. With -o json every result is printed as one JSON value per line, null included.`,
		Example: `  jw call power on
  jw call dut.power read
  jw call serial set_dtr true
  jw call . info`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf(`call needs a driver PATH and a METHOD (PATH "." is the root)`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, tree, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := tree.Lookup(args[0])
			if err != nil {
				return err
			}
			if !d.HasMethod(args[1]) {
				return unknownMethod(d, args[1])
			}
			return g.invoke(cmd, c, d, args[1], args[2:], stream)
		},
	}
	cmd.Flags().BoolVar(&stream, "stream", false, "call METHOD as a streaming method (results one per line)")
	return cmd
}

// shortForm runs `jw PATH... METHOD [ARG...]`.
func (g *globals) shortForm(cmd *cobra.Command, args []string, stream bool) error {
	c, tree, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	d, rest := tree.Resolve(args)
	if d == tree.Root && (len(rest) == 0 || !listsMethod(d, rest[0])) {
		return notFound{fmt.Sprintf("unknown command or driver %q; drivers: %s; commands: %s",
			args[0], orNone(d.ChildNames()), commandNames(cmd.Root()))}
	}
	if len(rest) == 0 && len(d.Children) == 0 && d.MethodKind(defaultStreamMethod) == client.KindStream {
		// A console or a port: "jw board console" opens it as "jw console" would.
		return openStream(cmd, c, d, defaultStreamMethod, nil)
	}
	if len(rest) == 0 {
		if len(d.Children) > 0 {
			return fmt.Errorf("missing driver or method for %s; %s", d.Path, choices(d))
		}
		return fmt.Errorf("missing method for %s; %s", d.Path, choices(d))
	}
	if !d.HasMethod(rest[0]) {
		return unknownMethod(d, rest[0])
	}
	if d.MethodKind(rest[0]) == client.KindStream {
		return openStream(cmd, c, d, rest[0], rest[1:])
	}
	return g.invoke(cmd, c, d, rest[0], rest[1:], stream)
}

// openStream runs the short form on a byte-stream method: an interactive console when stdin is
// a terminal (as "jw console"), a plain pipe otherwise (as "jw pipe").
func openStream(cmd *cobra.Command, c *client.Client, d *client.Driver, method string, words []string) error {
	if len(words) > 0 {
		return fmt.Errorf("%s is a byte stream and takes no arguments", joinOp(d, method))
	}
	key, err := escapeKey(cmd.Flags().Lookup("escape").Value.String())
	if err != nil {
		return usageError{err}
	}
	return console(cmd, c, d, method, key)
}

// listsMethod reports whether the exporter lists method for d.
func listsMethod(d *client.Driver, method string) bool {
	for _, m := range d.MethodNames() {
		if m == method {
			return true
		}
	}
	return false
}

func unknownMethod(d *client.Driver, method string) error {
	if len(d.Children) > 0 {
		return notFound{fmt.Sprintf("unknown driver or method %q in %s; %s", method, displayPath(d), choices(d))}
	}
	return notFound{fmt.Sprintf("unknown method %q for %s; %s", method, displayPath(d), choices(d))}
}

// choices lists what may follow driver d on the command line.
func choices(d *client.Driver) string {
	var parts []string
	if len(d.Children) > 0 {
		parts = append(parts, "drivers: "+strings.Join(d.ChildNames(), ", "))
	}
	if methods := d.MethodNames(); len(methods) > 0 {
		parts = append(parts, "methods: "+strings.Join(methods, ", "))
	}
	if len(parts) == 0 {
		return "it has no methods"
	}
	return strings.Join(parts, "; ")
}

func displayPath(d *client.Driver) string {
	if d.Path == "" {
		return "the root"
	}
	return d.Path
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// invoke calls method on d with the command-line words as arguments and prints the results.
func (g *globals) invoke(cmd *cobra.Command, c *client.Client, d *client.Driver, method string, words []string, stream bool) error {
	kind := d.MethodKind(method)
	if kind == client.KindStream {
		console := "jw console " + pathArg(d)
		if method != defaultStreamMethod {
			console += " --method " + method
		}
		return fmt.Errorf("%s is a byte stream, not a call (open it with %q or \"jw pipe %s %s\")",
			joinOp(d, method), console, pathArg(d), method)
	}
	args, err := bindArgs(d, method, words)
	if err != nil {
		return err
	}
	ctx, cancel := g.callCtx(cmd.Context())
	defer cancel()
	out := cmd.OutOrStdout()
	if g.output == outputText && isShellRun(d, method, kind) {
		return runShell(ctx, c, d, method, args, out, cmd.ErrOrStderr())
	}
	if stream || kind == client.KindStreaming {
		for v, err := range c.StreamingCall(ctx, d.UUID, method, args...) {
			if err != nil {
				return err
			}
			if err := g.print(out, v); err != nil {
				return err
			}
		}
		return nil
	}
	v, err := c.Call(ctx, d.UUID, method, args...)
	if err != nil {
		return err
	}
	return g.print(out, v)
}

// pathArg spells d's path as a command-line argument ("." for the root).
func pathArg(d *client.Driver) string {
	if d.Path == "" {
		return "."
	}
	return d.Path
}

func joinOp(d *client.Driver, method string) string {
	if d.Path == "" {
		return method
	}
	return d.Path + "." + method
}

// parseArgs turns command-line words into call arguments: a valid JSON value as such (numbers as
// json.Number, so that integers are checked exactly), anything else as a string.
func parseArgs(words []string) []any {
	args := make([]any, len(words))
	for i, w := range words {
		args[i] = w
		if !json.Valid([]byte(w)) {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(w))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			args[i] = v
		}
	}
	return args
}

// print writes one result: in text mode nothing for null, a string as is (ending in a newline),
// anything else as one line of JSON; in JSON mode always one line of JSON.
func (g *globals) print(w io.Writer, v any) error {
	if g.output == outputText {
		switch x := v.(type) {
		case nil:
			return nil
		case string:
			if !strings.HasSuffix(x, "\n") {
				x += "\n"
			}
			_, err := io.WriteString(w, x)
			return err
		}
	}
	return writeJSON(w, v)
}
