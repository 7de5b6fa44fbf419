package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jumpwire-dev/jumpwire/client"
)

// shellClient is the client label of shell drivers, whose streaming methods
// yield [stdout, stderr, returncode].
const shellClient = "jumpstarter_driver_shell.client.ShellClient"

// isShellRun reports whether method of d runs a shell command: jw then prints
// its output as upstream's ShellClient does.
func isShellRun(d *client.Driver, method string, kind string) bool {
	return d.Labels["jumpstarter.dev/client"] == shellClient && method != "get_methods" && kind == client.KindStreaming
}

// runShell prints a shell run's stdout and stderr as they arrive and returns
// its return code as an *exitError when it is not 0.
func runShell(ctx context.Context, c *client.Client, d *client.Driver, method string, args []any, stdout, stderr io.Writer) error {
	code := 0
	for v, err := range c.StreamingCall(ctx, d.UUID, method, args...) {
		if err != nil {
			return err
		}
		t, ok := v.([]any)
		if !ok || len(t) != 3 {
			return fmt.Errorf("%s: expected [stdout, stderr, returncode], got %v", joinOp(d, method), v)
		}
		if s, _ := t[0].(string); s != "" {
			if _, err := io.WriteString(stdout, s); err != nil {
				return err
			}
		}
		if s, _ := t[1].(string); s != "" {
			if _, err := io.WriteString(stderr, s); err != nil {
				return err
			}
		}
		if n, ok := t[2].(float64); ok {
			code = int(n)
		}
	}
	if code != 0 {
		if code < 0 || code > 255 {
			code = 1 // killed by a signal: upstream reports minus its number
		}
		return &exitError{code: code}
	}
	return nil
}
