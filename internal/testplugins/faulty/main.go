// Command faulty is a test plugin whose driver misbehaves on request: it
// panics, exits, sleeps, runs out of memory, leaves a child process behind,
// ignores being shut down, or rejects its config. Host tests and the
// fault-injection suite run it as a real plugin process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Config configures a faulty driver.
type Config struct {
	FailConfig bool `json:"fail_config" doc:"reject this config"`
	// FailIfExists names a file whose existence makes the driver reject
	// its config, so a test can make a later start fail.
	FailIfExists string `json:"fail_if_exists" doc:"reject the config while this file exists"`
	// LifecycleLog, when set, is a file the driver appends a line to on each
	// Reset and Close and when a sleep starts and is cancelled ("reset PID",
	// "close PID", "sleeping PID", "cancelled PID"), so a test can count and
	// order them across the driver's processes.
	LifecycleLog string `json:"lifecycle_log" doc:"append 'reset PID' and 'close PID' lines to this file"`
}

// Faulty is a driver that fails in the ways its methods name.
type Faulty struct {
	sdk.Base
	resetErr     atomic.Pointer[error] // what Reset returns, set by fail_reset
	lifecycleLog string
}

// Interface guards
var (
	_ sdk.Driver   = (*Faulty)(nil)
	_ sdk.Closer   = (*Faulty)(nil)
	_ sdk.Resetter = (*Faulty)(nil)
)

// ignoringShutdown is set by IgnoreShutdown: Close and the end of main then
// block forever, and SIGTERM is ignored.
var ignoringShutdown atomic.Bool

// New builds a faulty driver, or rejects the config when asked to.
func New(cfg Config) (*Faulty, error) {
	if cfg.FailConfig {
		return nil, sdk.InvalidConfig("fail_config", "asked to fail")
	}
	if cfg.FailIfExists != "" {
		if _, err := os.Stat(cfg.FailIfExists); err == nil {
			return nil, sdk.InvalidConfig("fail_if_exists", "%s exists", cfg.FailIfExists)
		}
	}
	return &Faulty{lifecycleLog: cfg.LifecycleLog}, nil
}

// record appends "event PID" to the lifecycle log, if there is one.
func (f *Faulty) record(event string) error {
	if f.lifecycleLog == "" {
		return nil
	}
	file, err := os.OpenFile(f.lifecycleLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(file, "%s %d\n", event, os.Getpid())
	return errors.Join(err, file.Close())
}

// Exports lists the methods clients call.
func (f *Faulty) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("ok", f.OK, "Return \"ok\""),
		sdk.Export("fail", f.Fail, "Fail with an error of kind (an sdk error kind's name) saying msg"),
		sdk.Export("fail_streaming", f.FailStreaming, "Yield once, then fail as fail does"),
		sdk.Export("fail_reset", f.FailReset, "Make every later Reset fail as fail does"),
		sdk.Export("panic", f.Panic, "Panic with msg"),
		sdk.Export("crash", f.Crash, "Panic with msg in a goroutine of the driver's own, which ends the process"),
		sdk.Export("exit", f.Exit, "Exit the plugin process with code"),
		sdk.Export("sleep", f.Sleep, "Sleep for seconds, or until the call is cancelled"),
		sdk.Export("spawn", f.Spawn, "Start a child process that sleeps; return its pid"),
		sdk.Export("spawn_stderr", f.SpawnStderr, "Like spawn, but the child holds the plugin's stderr"),
		sdk.Export("stream_panic", f.StreamPanic, "Yield once, then panic"),
		sdk.Export("oom", f.OOM, "Run out of memory under an address-space limit"),
		sdk.Export("ignore_shutdown", f.IgnoreShutdown, "From now on ignore SIGTERM and never return from Close or exit"),
		sdk.ExportStream("echo", f.Echo, "Send back what is received"),
		sdk.ExportStream("echo_panic", f.EchoPanic, "Send back the first read, then panic"),
	}
}

// OK returns "ok".
func (f *Faulty) OK(context.Context) (string, error) { return "ok", nil }

// kinds are the SDK's error kinds by the names the fail methods take.
var kinds = map[string]error{
	"not_found":        sdk.ErrNotFound,
	"unsupported":      sdk.ErrUnsupported,
	"invalid_argument": sdk.ErrInvalidArgument,
	"unavailable":      sdk.ErrUnavailable,
	"io":               sdk.ErrIO,
	"busy":             sdk.ErrBusy,
}

// kindError is an error of the kind named kind whose text is msg.
func kindError(kind, msg string) error {
	k, ok := kinds[kind]
	if !ok {
		return sdk.Errorf(sdk.ErrInvalidArgument, "no error kind %q", kind)
	}
	return sdk.Errorf(k, "%s", msg)
}

// Fail fails with an error of the named kind saying msg.
func (f *Faulty) Fail(_ context.Context, kind, msg string) error { return kindError(kind, msg) }

// FailStreaming yields "first", then fails as Fail does.
func (f *Faulty) FailStreaming(_ context.Context, kind, msg string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if yield("first", nil) {
			yield("", kindError(kind, msg))
		}
	}
}

// FailReset makes every later Reset fail as Fail does.
func (f *Faulty) FailReset(_ context.Context, kind, msg string) error {
	err := kindError(kind, msg)
	f.resetErr.Store(&err)
	return nil
}

// Reset records itself in the lifecycle log, and fails when FailReset
// asked it to.
func (f *Faulty) Reset(context.Context) error {
	if err := f.resetErr.Load(); err != nil {
		return *err
	}
	return f.record("reset")
}

// Panic panics with msg.
func (f *Faulty) Panic(_ context.Context, msg string) error { panic(msg) }

// Crash panics with msg outside any call, where the SDK cannot recover it:
// the process dies as a Go program does, with a stack trace on stderr.
func (f *Faulty) Crash(ctx context.Context, msg string) error {
	go func() { panic(msg) }()
	<-ctx.Done()
	return ctx.Err()
}

// Exit ends the process with code, as a crashing driver would.
func (f *Faulty) Exit(_ context.Context, code int) error {
	os.Exit(code)
	return nil
}

// Sleep sleeps for seconds, or until ctx is done (which it records in the
// lifecycle log as "cancelled PID"). It logs and records "sleeping" first,
// so a test can see the call is in the driver.
func (f *Faulty) Sleep(ctx context.Context, seconds float64) error {
	f.Logger().Info("sleeping", "seconds", seconds)
	if err := f.record("sleeping"); err != nil {
		return err
	}
	t := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errors.Join(ctx.Err(), f.record("cancelled"))
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

// OOM limits the process's address space (RLIMIT_AS) to a little more than
// it uses, then allocates far more: the Go runtime dies with "fatal error:
// runtime: out of memory" (exit status 2), as a driver that runs out of
// memory without a cgroup would. A kernel OOM kill is SIGKILL instead.
func (f *Faulty) OOM(context.Context) (int, error) {
	size, err := addressSpace()
	if err != nil {
		return 0, err
	}
	limit := uint64(size) + 64<<20
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return 0, err
	}
	// Address space, not memory: fresh pages are never touched, so even if
	// the limit did not hold this would not take the machine's memory.
	var hog [][]byte
	for range 64 {
		hog = append(hog, make([]byte, 32<<20))
	}
	return len(hog), errors.New("oom: 2 GiB allocated under a 64 MiB margin: the limit did not hold")
}

// addressSpace is the process's virtual size in bytes (VmSize).
func addressSpace() (int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb << 10, err
		}
	}
	return 0, io.ErrUnexpectedEOF
}

// IgnoreShutdown makes the plugin a bad citizen from now on: SIGTERM is
// ignored, Close never returns, and the process does not exit when its
// server is stopped. Only SIGKILL ends it.
func (f *Faulty) IgnoreShutdown(context.Context) error {
	ignoringShutdown.Store(true)
	signal.Ignore(syscall.SIGTERM)
	return nil
}

// Close records itself in the lifecycle log and returns, or never returns
// once IgnoreShutdown was called.
func (f *Faulty) Close(context.Context) error {
	if ignoringShutdown.Load() {
		select {} // not even the context's end stops it
	}
	return f.record("close")
}

// EchoPanic sends back what one read returns, then panics.
func (f *Faulty) EchoPanic(_ context.Context, conn sdk.Conn) error {
	b := make([]byte, 4096)
	n, err := conn.Read(b)
	if err != nil {
		return err
	}
	if _, err := conn.Write(b[:n]); err != nil {
		return err
	}
	panic("echo_panic: boom")
}

func main() {
	defer func() {
		for ignoringShutdown.Load() {
			time.Sleep(time.Hour)
		}
	}()
	sdk.Serve(sdk.Plugin{Version: "test", Drivers: []sdk.Type{{
		Name:        "faulty",
		Description: "A driver that fails on request",
		New:         sdk.Factory(New),
	}}})
}
