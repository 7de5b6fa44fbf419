package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

// streamLab is the lab (whose serial.connect echoes) plus a driver "bytes": "emit" sends
// "hello world" and ends the stream without reading; "die" sends "partial" and fails as a driver
// that was killed; "endless" echoes and, as a serial port, never ends the stream itself.
func streamLab() *fakeexporter.Exporter {
	fake := fakeexporter.Lab()
	fake.Root.Children = append(fake.Root.Children, &fakeexporter.Driver{
		Name: "bytes", Type: "bytes",
		Methods: []fakeexporter.Method{
			{Name: "emit", Kind: "stream", Connect: fakeexporter.Emit([]byte("hello "), nil, []byte("world"))},
			{Name: "die", Kind: "stream", Connect: fakeexporter.FailAfter([]byte("partial"),
				status.Error(codes.Unavailable, `driver "bytes" exited (signal: killed)`))},
			{Name: "endless", Kind: "stream", Connect: func(ctx context.Context, c *fakeexporter.StreamConn) error {
				for {
					p, err := c.Recv()
					if err != nil {
						<-ctx.Done() // after the client's half-close too
						return ctx.Err()
					}
					if err := c.Send(p); err != nil {
						return err
					}
				}
			}},
		},
	})
	return fake
}

// syncBuffer is a bytes.Buffer safe to read while jw writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runIn runs jw in-process as run (main.go) does, with stdin from in, and returns the exit code.
func runIn(ctx context.Context, args []string, in io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	case ctx.Err() != nil:
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "jw: %s\n", errorLine(err))
	var ue usageError
	if errors.As(err, &ue) && cmd != nil {
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
	}
	return 1
}

// jwIn runs jw against the exporter at sock with stdin from in, and waits for it to exit.
func jwIn(t *testing.T, sock string, in io.Reader, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- runIn(t.Context(), append([]string{"--host", sock}, args...), in, &out, &errOut) }()
	select {
	case code := <-done:
		return result{out.String(), errOut.String(), code}
	case <-time.After(30 * time.Second):
		t.Fatalf("jw %s did not exit; stdout %q, stderr %q", strings.Join(args, " "), out.String(), errOut.String())
		return result{}
	}
}

func TestPipe(t *testing.T) {
	sock := streamLab().Start(t)
	big := make([]byte, 3<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	t.Run("echo", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader("hello\n"), "pipe", "serial").check(t, "hello\n", "", 0)
	})
	t.Run("explicit method", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader("x"), "pipe", "serial", "connect").check(t, "x", "", 0)
	})
	t.Run("large", func(t *testing.T) {
		r := jwIn(t, sock, bytes.NewReader(big), "pipe", "serial")
		if r.code != 0 || r.stderr != "" || r.stdout != string(big) {
			t.Errorf("code %d, stderr %q, %d bytes out (want the %d in)", r.code, r.stderr, len(r.stdout), len(big))
		}
	})
	t.Run("empty stdin", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader(""), "pipe", "serial").check(t, "", "", 0)
	})
	t.Run("exits when the driver ends, stdin still open", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		jwIn(t, sock, pr, "pipe", "bytes", "emit").check(t, "hello world", "", 0)
	})
	t.Run("driver dies", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		jwIn(t, sock, pr, "pipe", "bytes", "die").check(t, "partial",
			"jw: bytes.die: unavailable: driver \"bytes\" exited (signal: killed)\n", 1)
	})
	t.Run("idle ends a stream that never ends", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader("ping"), "pipe", "--idle", "300ms", "bytes", "endless").check(t, "ping", "", 0)
	})
	t.Run("idle counts data from the driver", func(t *testing.T) {
		// stdin sends a byte every 100ms for a second: never 300ms idle.
		pr, pw := io.Pipe()
		go func() {
			defer pw.Close()
			for range 10 {
				time.Sleep(100 * time.Millisecond)
				if _, err := pw.Write([]byte(".")); err != nil {
					return
				}
			}
		}()
		jwIn(t, sock, pr, "pipe", "--idle", "300ms", "bytes", "endless").check(t, "..........", "", 0)
	})
	t.Run("short form", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader("short\n"), "serial", "connect").check(t, "short\n", "", 0)
	})
	t.Run("short form without a method opens connect", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader("shorter\n"), "serial").check(t, "shorter\n", "", 0)
	})
	t.Run("console without a terminal is a pipe", func(t *testing.T) {
		in := "abc\x02\x02\x02def\n" // no escape sequence in pipe mode
		jwIn(t, sock, strings.NewReader(in), "console", "serial").check(t, in, "", 0)
	})
	t.Run("console --method", func(t *testing.T) {
		jwIn(t, sock, strings.NewReader(""), "console", "bytes", "--method", "emit").check(t, "hello world", "", 0)
	})
}

func TestPipeErrors(t *testing.T) {
	sock := streamLab().Start(t)
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no byte stream", []string{"pipe", "power"}, `jw: power has no byte stream methods (its methods: off, on, read)`},
		{"not a byte stream", []string{"pipe", "power", "on"}, `jw: power has no byte stream methods (its methods: off, on, read)`},
		{"console without byte streams", []string{"console", "dut.power"}, `jw: dut.power has no byte stream methods (its methods: off, on, read)`},
		{"unknown method", []string{"pipe", "bytes", "nope"}, `jw: unknown method "nope" for bytes; byte streams: die, emit, endless`},
		{"console on a unary method", []string{"console", "serial", "--method", "set_dtr"},
			`jw: serial.set_dtr is not a byte stream (call it with "jw call"); byte streams: connect`},
		{"unknown driver", []string{"pipe", "dut.uart"}, `jw: no such driver "uart" in dut; drivers: power`},
		{"negative idle", []string{"pipe", "--idle", "-1s", "serial"}, `jw: --idle -1s: a duration cannot be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwIn(t, sock, strings.NewReader(""), tt.args...).check(t, "", tt.stderr+"\n", 1)
		})
	}
}
