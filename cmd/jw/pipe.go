package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

// defaultStreamMethod is the byte-stream method jw opens unless told otherwise (the serial and
// network drivers' "connect").
const defaultStreamMethod = "connect"

func newPipeCmd(g *globals) *cobra.Command {
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "pipe PATH [METHOD]",
		Short: "Connect stdin and stdout to a driver's byte stream",
		Long: `Open a byte stream to METHOD (default "connect") of the driver at PATH and copy
stdin to it and its data to stdout, unchanged. At the end of stdin, jw tells the
driver that no more data will come and still prints what the driver sends; jw exits
when the driver ends the stream (or on Ctrl-C).

A serial port or a UDP port never ends its stream by itself: --idle ends it once
nothing has moved either way for that long, and jw then exits 0.

For an interactive session on a terminal, use "jw console".`,
		Example: `  echo 'AT' | jw pipe modem
  jw pipe dut.serial connect < commands.txt > log.txt
  printf 'root\r' | jw pipe --idle 2s dut.serial`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if idle < 0 {
				return fmt.Errorf("--idle %v: a duration cannot be negative", idle)
			}
			method := defaultStreamMethod
			if len(args) == 2 {
				method = args[1]
			}
			c, d, err := g.streamTarget(cmd, args[0], method)
			if err != nil {
				return err
			}
			defer c.Close()
			return pipe(cmd, c, d, method, idle)
		},
	}
	cmd.Flags().DurationVar(&idle, "idle", 0, "end the stream once no data has moved either way for this long, e.g. 2s (0: never)")
	return cmd
}

// pipe splices stdin and stdout with a byte stream to method of d. With idle above 0 the stream
// ends, and pipe returns nil, once no data has moved for that long.
func pipe(cmd *cobra.Command, c *client.Client, d *client.Driver, method string, idle time.Duration) error {
	ctx := cmd.Context()
	conn := newStdioConn(cmd.InOrStdin(), cmd.OutOrStdout(), nil)
	var quiet *idleTimer
	if idle > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		quiet = newIdleTimer(idle, cancel)
		defer quiet.stop()
		conn.moved = quiet.reset
	}
	err := c.Forward(ctx, d.UUID, method, conn)
	if err != nil && quiet.expired() {
		return nil // the stream ended because it was idle, as asked
	}
	return err
}

// idleTimer calls fire once it has not been reset for a while.
type idleTimer struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

func newIdleTimer(d time.Duration, fire func()) *idleTimer {
	it := &idleTimer{d: d}
	it.t = time.AfterFunc(d, func() {
		it.fired.Store(true)
		fire()
	})
	return it
}

// reset starts the wait again.
func (it *idleTimer) reset() { it.t.Reset(it.d) }

func (it *idleTimer) stop() { it.t.Stop() }

// expired reports whether the timer fired; false for a nil timer.
func (it *idleTimer) expired() bool { return it != nil && it.fired.Load() }

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
	_, listed := d.Labels[client.LabelMethods]
	if listed && len(streamMethods(d)) == 0 {
		return notFound{fmt.Sprintf("%s has no byte stream methods (its methods: %s)", displayPath(d), orNone(d.MethodNames()))}
	}
	if !d.HasMethod(method) {
		if streams := streamMethods(d); len(streams) > 0 {
			return notFound{fmt.Sprintf("unknown method %q for %s; byte streams: %s", method, displayPath(d), strings.Join(streams, ", "))}
		}
		return unknownMethod(d, method)
	}
	if listed && d.MethodKind(method) != client.KindStream {
		return fmt.Errorf("%s is not a byte stream (call it with \"jw call\"); byte streams: %s",
			joinOp(d, method), strings.Join(streamMethods(d), ", "))
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
