// Command jw is jumpwire's one CLI: the exporter side (run, shell) and the client side (tree,
// call and the short form `jw PATH... METHOD [ARG...]`, console, pipe, forward, logs, status,
// end-session).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jumpwire-dev/jumpwire/client"
)

// exitInterrupted is the exit code after Ctrl-C (128 + SIGINT).
const exitInterrupted = 130

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes jw with args and returns the exit code: 0, 1 on error (one line `jw: <error>` on
// stderr, followed by the command's usage when the command line itself was wrong; with -o json
// one JSON object instead, see errorJSON), the command's
// own status for `jw shell -- CMD` (an *exitError, silently), or 130 when ctx was canceled
// (interrupted).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var exit *exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Value.String() == outputJSON {
		_ = writeJSON(stderr, errorJSON{errorBody{Code: errorCode(err), Message: errorLine(err)}})
		return 1
	}
	fmt.Fprintf(stderr, "jw: %s\n", errorLine(err))
	var ue usageError
	if errors.As(err, &ue) && cmd != nil {
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
	}
	return 1
}

// errorLine is the text of the one error line, with advice where jw has some.
func errorLine(err error) string {
	msg := err.Error()
	if errors.Is(err, client.ErrUnreachable) {
		msg += ` (is it running? start one with "jw shell -c FILE")`
	}
	return msg
}

// usageError is an error in the command line itself (unknown flag, missing argument): jw prints the
// command's usage after it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit status out of a command: a child's in `jw shell
// -- CMD`, or 128+signal when a console ends on a signal.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
