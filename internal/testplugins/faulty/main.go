// Command faulty is a test plugin whose driver misbehaves on request: it
// panics, exits, sleeps, leaves a child process behind, or rejects its
// config. Host tests and the fault-injection suite run it as a real plugin
// process.
package main

import (
	"context"
	"io"
	"iter"
	"os"
	"os/exec"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Config configures a faulty driver.
type Config struct {
	FailConfig bool `json:"fail_config" doc:"reject this config"`
}

// Faulty is a driver that fails in the ways its methods name.
type Faulty struct {
	sdk.Base
}

// Interface guards
var _ sdk.Driver = (*Faulty)(nil)

// New builds a faulty driver, or rejects the config when asked to.
func New(cfg Config) (*Faulty, error) {
	if cfg.FailConfig {
		return nil, sdk.InvalidConfig("fail_config", "asked to fail")
	}
	return &Faulty{}, nil
}

// Exports lists the methods clients call.
func (f *Faulty) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("ok", f.OK, "Return \"ok\""),
		sdk.Export("panic", f.Panic, "Panic with msg"),
		sdk.Export("exit", f.Exit, "Exit the plugin process with code"),
		sdk.Export("sleep", f.Sleep, "Sleep for seconds, or until the call is cancelled"),
		sdk.Export("spawn", f.Spawn, "Start a child process that sleeps; return its pid"),
		sdk.Export("spawn_stderr", f.SpawnStderr, "Like spawn, but the child holds the plugin's stderr"),
		sdk.Export("stream_panic", f.StreamPanic, "Yield once, then panic"),
		sdk.ExportStream("echo", f.Echo, "Send back what is received"),
	}
}

// OK returns "ok".
func (f *Faulty) OK(context.Context) (string, error) { return "ok", nil }

// Panic panics with msg.
func (f *Faulty) Panic(_ context.Context, msg string) error { panic(msg) }

// Exit ends the process with code, as a crashing driver would.
func (f *Faulty) Exit(_ context.Context, code int) error {
	os.Exit(code)
	return nil
}

// Sleep sleeps for seconds, or until ctx is done.
func (f *Faulty) Sleep(ctx context.Context, seconds float64) error {
	t := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Spawn starts `sleep 1000` and returns its pid. The child stays in the
// plugin's process group; stopping the plugin must stop it too.
func (f *Faulty) Spawn(context.Context) (int, error) {
	return spawn(nil) // stdio is /dev/null: the child holds none of the plugin's pipes
}

// SpawnStderr is Spawn with the child holding the plugin's own stderr (fd 2,
// the pipe to the exporter), as a helper started with inherited stdio would.
func (f *Faulty) SpawnStderr(context.Context) (int, error) {
	return spawn(os.NewFile(2, "stderr"))
}

func spawn(stderr *os.File) (int, error) {
	// Plugins run without the exporter's environment, so there is no PATH.
	path := "/bin/sleep"
	if _, err := os.Stat(path); err != nil {
		path = "/usr/bin/sleep"
	}
	cmd := exec.Command(path, "1000")
	if stderr != nil {
		cmd.Stderr = stderr
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// StreamPanic yields "first", then panics.
func (f *Faulty) StreamPanic(context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if !yield("first", nil) {
			return
		}
		panic("stream_panic: boom")
	}
}

// Echo copies what it reads back to the client until the client half-closes.
func (f *Faulty) Echo(_ context.Context, conn sdk.Conn) error {
	if _, err := io.Copy(conn, conn); err != nil {
		return err
	}
	return conn.CloseWrite()
}

func main() {
	sdk.Serve(sdk.Plugin{Version: "test", Drivers: []sdk.Type{{
		Name:        "faulty",
		Description: "A driver that fails on request",
		New:         sdk.Factory(New),
	}}})
}
