package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/jumpwire-dev/jumpwire/client"
)

func newConsoleCmd(g *globals) *cobra.Command {
	var method string
	cmd := &cobra.Command{
		Use:   "console PATH",
		Short: "Open an interactive console on a driver's byte stream (a serial port)",
		Long: `Open a byte stream to the driver at PATH (method "connect", or --method) and attach
the terminal to it: every key goes to the device as typed (Ctrl-C included) and
what the device sends is shown as is.

Leave with Ctrl-B three times in a row (within a second). A Ctrl-B that is not
part of that sequence is passed on to the device. Choose another key with
--escape (e.g. --escape '^]' when Ctrl-B is tmux's prefix) or $` + escapeEnv + `.
jw also leaves when the device ends the stream, and restores the terminal however
it exits.

When stdin is not a terminal, console works as "jw pipe": stdin goes to the device
unchanged, the device's data to stdout, and jw exits when the device ends the stream.`,
		Example: `  jw console serial
  jw console dut.uart --method connect`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := escapeKey(g.escape)
			if err != nil {
				return usageError{err}
			}
			c, d, err := g.streamTarget(cmd, args[0], method)
			if err != nil {
				return err
			}
			defer c.Close()
			return console(cmd, c, d, method, key)
		},
	}
	cmd.Flags().StringVar(&method, "method", defaultStreamMethod, "byte-stream method to open")
	cmd.Flags().StringVar(&g.escape, "escape", "", "key that, pressed three times, leaves the console: ^X or ctrl-X (default ^B, or $"+escapeEnv+")")
	return cmd
}

// terminalIn returns stdin's file descriptor when stdin is a terminal.
func terminalIn(cmd *cobra.Command) (int, bool) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// console attaches the terminal to a byte stream to method of d, or pipes stdin and stdout
// when stdin is not a terminal.
func console(cmd *cobra.Command, c *client.Client, d *client.Driver, method string, escape byte) error {
	fd, ok := terminalIn(cmd)
	if !ok {
		return pipe(cmd, c, d, method, 0)
	}
	// In raw mode the terminal sends no signals for Ctrl-C; these come from elsewhere (kill, a
	// closed terminal). Each ends the session so that the terminal is restored.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	caught := make(chan os.Signal, 1) // the signal that ended the session, if any
	go func() {
		defer close(caught)
		select {
		case sig := <-sigs:
			caught <- sig
			cancel()
		case <-ctx.Done():
		}
	}()

	s, err := c.Stream(ctx, d.UUID, method)
	if err != nil {
		return err
	}
	defer s.Close()
	stderr := cmd.ErrOrStderr()
	name := displayPath(d)
	fmt.Fprintf(stderr, "connected to %s; leave with %s three times\n", name, keyName(escape))
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("console: cannot put the terminal in raw mode: %w", err)
	}
	restore := func() { _ = term.Restore(fd, old) }
	defer restore()

	err = s.Splice(newStdioConn(cmd.InOrStdin(), cmd.OutOrStdout(), newEscapeDetector(escape)))
	restore()
	cancel()
	if sig, ok := <-caught; ok {
		fmt.Fprintf(stderr, "\n%s: leaving the console\n", sig)
		return &exitError{code: 128 + int(sig.(syscall.Signal))}
	}
	switch {
	case errors.Is(err, errDetached):
		fmt.Fprintf(stderr, "\ndisconnected from %s\n", name)
		return nil
	case err != nil:
		fmt.Fprintln(stderr)
		return err
	}
	fmt.Fprintf(stderr, "\n%s ended the stream\n", name)
	return nil
}
