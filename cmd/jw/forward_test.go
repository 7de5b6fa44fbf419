package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

func TestListenAddr(t *testing.T) {
	tests := []struct{ arg, want, err string }{
		{"0", "127.0.0.1:0", ""},
		{"8080", "127.0.0.1:8080", ""},
		{"0.0.0.0:2222", "0.0.0.0:2222", ""},
		{":2222", ":2222", ""},
		{"[::1]:80", "[::1]:80", ""},
		{"localhost:65535", "localhost:65535", ""},
		{"65536", "", `invalid port "65536" in "65536": want a number from 0 to 65535`},
		{"http", "", `invalid port "http" in "http": want a number from 0 to 65535`},
		{"+80", "", `invalid port "+80" in "+80": want a number from 0 to 65535`},
		{"::1", "", `invalid address "::1": want [ADDR:]PORT, e.g. 8080 or 0.0.0.0:8080`},
	}
	for _, tt := range tests {
		got, err := listenAddr(tt.arg)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("listenAddr(%q) error %v, want %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
		}
	}
}

// forwarder is a `jw forward` running in the background.
type forwarder struct {
	addr           string // the address it printed
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// startForward runs `jw forward ARGS...` against the exporter at sock until the test ends (or
// stop), and waits for the line that names the address.
func startForward(t *testing.T, sock string, args ...string) *forwarder {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := &forwarder{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		f.done <- runIn(ctx, append([]string{"--host", sock, "forward"}, args...), strings.NewReader(""), f.stdout, f.stderr)
	}()
	t.Cleanup(func() { f.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, ok := strings.CutSuffix(f.stdout.String(), "\n"); ok {
			words := strings.Fields(line)
			if len(words) != 5 || words[0] != "forwarding" || words[2] != "->" {
				t.Fatalf("jw forward printed %q, want \"forwarding ADDRESS -> PATH (NETWORK)\"", line)
			}
			f.addr = words[1]
			return f
		}
		select {
		case code := <-f.done:
			t.Fatalf("jw forward exited with %d: %s", code, f.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("jw forward printed no address")
		}
		time.Sleep(time.Millisecond)
	}
}

// stop interrupts the forwarder and checks that it exits as after Ctrl-C, having logged nothing
// more than expected.
func (f *forwarder) stop(t *testing.T) int {
	t.Helper()
	f.cancel()
	select {
	case code := <-f.done:
		f.done <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("jw forward did not stop when interrupted")
		return 0
	}
}

// echoOver sends msg over conn, half-closes it and returns what comes back.
func echoOver(t *testing.T, conn net.Conn, msg []byte) []byte {
	t.Helper()
	go func() {
		_, _ = conn.Write(msg)
		_ = conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestForwardTCP(t *testing.T) {
	fake := streamLab()
	sock := fake.Start(t)
	f := startForward(t, sock, "tcp", "0", "serial")
	if !strings.HasPrefix(f.addr, "127.0.0.1:") || f.stdout.String() != "forwarding "+f.addr+" -> serial (tcp)\n" {
		t.Fatalf("printed %q", f.stdout.String())
	}

	// Two connections at once, each with its own stream.
	a, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	readEcho(t, a, "first")
	waitFor(t, "two streams", func() bool { return fake.OpenStreams() == 2 })
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if got := echoOver(t, b, big); !bytes.Equal(got, big) {
		t.Errorf("echoed %d bytes, want %d", len(got), len(big))
	}
	if got := echoOver(t, a, []byte(" second")); string(got) != " second" {
		t.Errorf("echoed %q", got)
	}
	waitFor(t, "the streams to close", func() bool { return fake.OpenStreams() == 0 })

	if code := f.stop(t); code != exitInterrupted || f.stderr.String() != "" {
		t.Errorf("after interrupt: code %d, stderr %q", code, f.stderr.String())
	}
	if _, err := net.Dial("tcp", f.addr); err == nil {
		t.Error("still listening after the interrupt")
	}
}

// readEcho reads len(want) bytes from conn and checks them.
func readEcho(t *testing.T, conn net.Conn, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
}

func TestForwardConnectionErrors(t *testing.T) {
	fake := streamLab()
	sock := fake.Start(t)
	f := startForward(t, sock, "tcp", "127.0.0.1:0", "bytes", "--method", "die")
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "partial" {
		t.Errorf("read %q, want \"partial\"", got)
	}
	waitFor(t, "the error line", func() bool { return strings.Count(f.stderr.String(), "\n") == 1 })
	line := f.stderr.String()
	if !strings.HasPrefix(line, "jw: forward "+f.addr+": connection 1 from 127.0.0.1:") ||
		!strings.HasSuffix(line, `: bytes.die: unavailable: driver "bytes" exited (signal: killed)`+"\n") {
		t.Errorf("error line %q", line)
	}
	// The forwarder keeps going.
	conn, err = net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(conn)
	conn.Close()
	if string(got) != "partial" {
		t.Errorf("second connection read %q", got)
	}
	waitFor(t, "the second error line", func() bool { return strings.Count(f.stderr.String(), "\n") == 2 })
	if code := f.stop(t); code != exitInterrupted {
		t.Errorf("after interrupt: code %d", code)
	}
}

func TestForwardUnix(t *testing.T) {
	fake := streamLab()
	sock := fake.Start(t)
	path := filepath.Join(filepath.Dir(fakeexporter.SocketPath(t)), "fwd.sock")
	f := startForward(t, sock, "unix", path, "serial")
	if f.addr != path || f.stdout.String() != "forwarding "+path+" -> serial (unix)\n" {
		t.Fatalf("printed %q", f.stdout.String())
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := echoOver(t, conn, []byte("over unix")); string(got) != "over unix" {
		t.Errorf("echoed %q", got)
	}
	if code := f.stop(t); code != exitInterrupted || f.stderr.String() != "" {
		t.Errorf("after interrupt: code %d, stderr %q", code, f.stderr.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestForwardUsage(t *testing.T) {
	sock := streamLab().Start(t)
	jwIn(t, sock, strings.NewReader(""), "forward", "tcp", "99999", "serial").checkUsage(t,
		`jw: invalid port "99999" in "99999": want a number from 0 to 65535`, "jw forward tcp [ADDR:]PORT PATH [flags]")
	jwIn(t, sock, strings.NewReader(""), "forward", "tcp", "0").checkUsage(t,
		`jw: accepts 2 arg(s), received 1`, "jw forward tcp [ADDR:]PORT PATH [flags]")
	jwIn(t, sock, strings.NewReader(""), "forward", "tcp", "0", "power").check(t, "",
		"jw: power has no byte stream methods (its methods: off, on, read)\n", 1)
}

func TestForwardUDP(t *testing.T) {
	fake := streamLab()
	sock := fake.Start(t)
	f := startForward(t, sock, "udp", "0", "serial", "--idle-timeout", "1s")
	if f.stdout.String() != "forwarding "+f.addr+" -> serial (udp)\n" {
		t.Fatalf("printed %q", f.stdout.String())
	}
	dial := func() *net.UDPConn {
		raddr, err := net.ResolveUDPAddr("udp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	// exchange sends msg until it comes back (UDP may drop a datagram); a late copy of an
	// earlier message is skipped.
	exchange := func(conn *net.UDPConn, msg string) {
		t.Helper()
		buf := make([]byte, 2048)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := conn.Read(buf)
			if err == nil && string(buf[:n]) == msg {
				return
			}
		}
		t.Fatalf("no answer to %q", msg)
	}
	a, b := dial(), dial()
	exchange(a, "one")
	exchange(b, "from b")
	exchange(a, "two")
	if n := fake.OpenStreams(); n != 2 {
		t.Errorf("%d streams for two peers, want 2", n)
	}
	waitFor(t, "idle peers' streams to close", func() bool { return fake.OpenStreams() == 0 })
	exchange(a, "again") // a new stream for a returning peer
	if code := f.stop(t); code != exitInterrupted || f.stderr.String() != "" {
		t.Errorf("after interrupt: code %d, stderr %q", code, f.stderr.String())
	}
	waitFor(t, "the streams to close", func() bool { return fake.OpenStreams() == 0 })
}
