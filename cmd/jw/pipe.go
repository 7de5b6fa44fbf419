package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

// defaultStreamMethod is the byte-stream method jw opens unless told otherwise (the serial and
// network drivers' "connect").
const defaultStreamMethod = "connect"

func newPipeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pipe PATH [METHOD]",
		Short: "Connect stdin and stdout to a driver's byte stream",
		Long: `Open a byte stream to METHOD (default "connect") of the driver at PATH and copy
stdin to it and its data to stdout, unchanged. At the end of stdin, jw tells the
driver that no more data will come and still prints what the driver sends; jw exits
when the driver ends the stream (or on Ctrl-C).

For an interactive session on a terminal, use "jw console".`,
		Example: `  echo 'AT' | jw pipe modem
  jw pipe dut.serial connect < commands.txt > log.txt`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method := defaultStreamMethod
			if len(args) == 2 {
				method = args[1]
			}
			c, d, err := g.streamTarget(cmd, args[0], method)
			if err != nil {
				return err
			}
			defer c.Close()
			return pipe(cmd, c, d, method)
		},
	}
}

// pipe splices stdin and stdout with a byte stream to method of d.
func pipe(cmd *cobra.Command, c *client.Client, d *client.Driver, method string) error {
	conn := newStdioConn(cmd.InOrStdin(), cmd.OutOrStdout(), nil)
	return c.Forward(cmd.Context(), d.UUID, method, conn)
}

// streamTarget connects to the exporter and finds the driver at path, checking that method is
// one of its byte streams. The caller closes the client.
func (g *globals) streamTarget(cmd *cobra.Command, path, method string) (*client.Client, *client.Driver, error) {
	c, tree, err := g.connect(cmd)
	if err != nil {
		return nil, nil, err
	}
	d, err := tree.Lookup(path)
	if err == nil {
		err = checkStream(d, method)
	}
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, d, nil
}

// checkStream checks that d has method and that it is a byte stream, as far as the exporter
// says: a plain Jumpstarter exporter does not list kinds, and then the exporter decides.
func checkStream(d *client.Driver, method string) error {
	if !d.HasMethod(method) {
		if streams := streamMethods(d); len(streams) > 0 {
			return fmt.Errorf("unknown method %q for %s; byte streams: %s", method, displayPath(d), strings.Join(streams, ", "))
		}
		return unknownMethod(d, method)
	}
	if _, listed := d.Labels[client.LabelMethods]; listed && d.MethodKind(method) != client.KindStream {
		streams := "it has none"
		if s := streamMethods(d); len(s) > 0 {
			streams = "byte streams: " + strings.Join(s, ", ")
		}
		return fmt.Errorf("%s is not a byte stream (call it with \"jw call\"); %s", joinOp(d, method), streams)
	}
	return nil
}

// streamMethods lists d's byte-stream methods.
func streamMethods(d *client.Driver) []string {
	var names []string
	for _, m := range d.MethodNames() {
		if d.MethodKind(m) == client.KindStream {
			names = append(names, m)
		}
	}
	return names
}
