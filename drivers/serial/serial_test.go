package serial_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/ptypair"

	"github.com/jumpwire-dev/jumpwire/drivers/serial"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamTimeout bounds every stream a test opens, so a broken driver fails
// the test instead of hanging it.
const streamTimeout = 10 * time.Second

func TestConfigRejected(t *testing.T) {
	regular := filepath.Join(t.TempDir(), "not-a-tty")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no url", map[string]any{}, "url: required: the serial port's device path, e.g. /dev/ttyUSB0"},
		{"missing port", map[string]any{"url": "/dev/ttyJUMPWIRE9"}, "url: serial port /dev/ttyJUMPWIRE9 does not exist"},
		{"not a device", map[string]any{"url": regular}, "url: " + regular + " is not a serial port (not a character device)"},
		{"pyserial url", map[string]any{"url": "loop://"}, `url: must be a device path such as /dev/ttyUSB0, got "loop://" (pyserial URL handlers are not supported)`},
		{"bad parity", map[string]any{"url": "/dev/null", "parity": "purple"}, `parity: must be one of none, even, odd, mark, space; got "purple"`},
		{"bad bytesize", map[string]any{"url": "/dev/null", "bytesize": 9}, "bytesize: must be 5, 6, 7 or 8 data bits, got 9"},
		{"bad stopbits", map[string]any{"url": "/dev/null", "stopbits": 3}, "stopbits: must be 1, 1.5 or 2, got 3"},
		{"one and a half stopbits", map[string]any{"url": "/dev/null", "stopbits": 1.5}, "stopbits: 1.5 stop bits are not supported on " + runtime.GOOS + "; use 1 or 2"},
		{"bad baudrate", map[string]any{"url": "/dev/null", "baudrate": 0}, "baudrate: must be a positive number of bits per second, got 0"},
		{"wrong type", map[string]any{"url": "/dev/null", "share": "yes"}, `share: expected boolean, got string "yes"`},
		{"unknown key", map[string]any{"url": "/dev/null", "port": "/dev/ttyS0"}, "port: unknown key; valid keys: baudrate, bytesize, check_present, parity, share, stopbits, url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Configure(t, serial.Type, tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckPresentOff(t *testing.T) {
	d := sdktest.Start(t, serial.Type, map[string]any{"url": "/dev/ttyJUMPWIRE9", "check_present": false})
	if got := d.Configured.Description; got != "serial port /dev/ttyJUMPWIRE9, 115200 8N1" {
		t.Errorf("description %q", got)
	}
	// The stream fails to open, with the reason.
	_, err := d.Stream(t.Context(), "connect")
	wantStatus(t, err, codes.Unavailable, "serial port /dev/ttyJUMPWIRE9 does not exist (unplugged?)")
}

func TestRoundTrip(t *testing.T) {
	p := ptypair.Start(t)
	peer := p.OpenPeer(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port, "baudrate": 9600, "parity": "even", "stopbits": 2})
	if got := d.Configured.Description; got != "serial port "+p.Port+", 9600 8E2" {
		t.Errorf("description %q", got)
	}
	c := connect(t, d)

	// Every byte value passes unchanged, both ways.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	if got := readPeer(t, peer, len(all)); !bytes.Equal(got, all) {
		t.Fatalf("the device got %q, want %q", got, all)
	}
	reply := []byte("login: \r\n\x00\xff\x1b[0m")
	if _, err := peer.Write(reply); err != nil {
		t.Fatal(err)
	}
	if got := readConn(t, c, len(reply)); !bytes.Equal(got, reply) {
		t.Fatalf("the client got %q, want %q", got, reply)
	}

	// After the client's half-close the device's output still arrives.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if got := readConn(t, c, 3); string(got) != "bye" {
		t.Fatalf("after half-close the client got %q, want %q", got, "bye")
	}
}

func TestLargeTransfer(t *testing.T) {
	p := ptypair.Start(t)
	peer := p.OpenPeer(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port})
	c := connect(t, d)

	const size = 1 << 20
	up, down := randomBytes(t, size), randomBytes(t, size)
	errs := make(chan error, 3)
	go func() { // client -> device
		for b := up; len(b) > 0; b = b[min(len(b), 32<<10):] {
			if _, err := c.Write(b[:min(len(b), 32<<10)]); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	gotUp := make(chan [sha256.Size]byte, 1)
	go func() { // the device reads while it writes: a pty holds only a few KiB
		h := sha256.New()
		peer.SetReadDeadline(time.Now().Add(streamTimeout))
		_, err := io.CopyN(h, peer, size)
		errs <- err
		gotUp <- [sha256.Size]byte(h.Sum(nil))
	}()
	go func() { // device -> client
		_, err := peer.Write(down)
		errs <- err
	}()
	h := sha256.New()
	if _, err := io.CopyN(h, c, size); err != nil {
		t.Fatalf("client read: %v", err)
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := [sha256.Size]byte(h.Sum(nil)), sha256.Sum256(down); got != want {
		t.Errorf("device -> client: sha256 %x, want %x", got, want)
	}
	if got, want := <-gotUp, sha256.Sum256(up); got != want {
		t.Errorf("client -> device: sha256 %x, want %x", got, want)
	}
}

func TestModemLines(t *testing.T) {
	p := ptypair.Start(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port})
	// A pseudo-terminal has no modem lines: Linux answers ENOTTY to TIOCMGET,
	// which go.bug.st/serial passes on. A client learns the port cannot do it.
	for _, m := range []string{"set_dtr", "set_rts"} {
		_, err := d.Call(t.Context(), m, true)
		line := strings.ToUpper(m[4:])
		wantStatus(t, err, codes.Unimplemented, m+": serial port "+p.Port+" has no "+line+" line (inappropriate ioctl for device)")
	}
	_, err := d.Call(t.Context(), "set_dtr", "yes")
	wantStatus(t, err, codes.InvalidArgument, `set_dtr: value: expected boolean, got string "yes"`)
}

func TestBusy(t *testing.T) {
	p := ptypair.Start(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port})
	ctx, cancel := context.WithCancel(t.Context())
	first, err := d.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	// The first stream holds the port once its first write went through.
	peer := p.OpenPeer(t)
	first.Write([]byte("x"))
	readPeer(t, peer, 1)

	_, err = d.Stream(t.Context(), "connect")
	wantStatus(t, err, codes.FailedPrecondition, "serial port "+p.Port+" is in use by another stream")

	// Once the first client goes away, the port is free again.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := connect(t, d)
		c.Write([]byte("y"))
		peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if b := make([]byte, 1); func() bool { n, _ := peer.Read(b); return n == 1 && b[0] == 'y' }() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the port stayed busy after its stream ended")
		}
	}
}

func TestShare(t *testing.T) {
	p := ptypair.Start(t)
	peer := p.OpenPeer(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port, "share": true})
	a, b := connect(t, d), connect(t, d)

	// Writes from either stream reach the device.
	a.Write([]byte("from a;"))
	if got := readPeer(t, peer, 7); string(got) != "from a;" {
		t.Fatalf("device got %q", got)
	}
	b.Write([]byte("from b;"))
	if got := readPeer(t, peer, 7); string(got) != "from b;" {
		t.Fatalf("device got %q", got)
	}
	// Both streams receive everything the device sends, once both listen.
	waitListening(t, peer, a, b)
	peer.Write([]byte("broadcast"))
	for i, c := range []*sdktest.Conn{a, b} {
		if got := readConn(t, c, 9); string(got) != "broadcast" {
			t.Errorf("stream %d got %q", i, got)
		}
	}
}

// TestShareSlowReader: a stream that stops reading misses output, and the
// others do not wait for it.
func TestShareSlowReader(t *testing.T) {
	p := ptypair.Start(t)
	peer := p.OpenPeer(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port, "share": true})
	fast, slow := connect(t, d), connect(t, d)
	waitListening(t, peer, fast, slow)

	// 2 MiB pass to the fast stream in lockstep while the slow one reads
	// nothing: far more than its queue and the gRPC window hold.
	const chunk, total = 16 << 10, 2 << 20
	data := randomBytes(t, total)
	for off := 0; off < total; off += chunk {
		if _, err := peer.Write(data[off : off+chunk]); err != nil {
			t.Fatal(err)
		}
		if got := readConn(t, fast, chunk); !bytes.Equal(got, data[off:off+chunk]) {
			t.Fatalf("the fast stream got different bytes at offset %d", off)
		}
	}

	// The slow stream is still served: it gets what its queue kept, misses
	// the rest, and then sees new output.
	got := make(chan int, 1)
	go func() {
		var n int
		buf := make([]byte, 64<<10)
		for {
			m, err := slow.Read(buf)
			n += m
			if err != nil || bytes.Contains(buf[:m], []byte("\n--end--\n")) {
				got <- n
				return
			}
		}
	}()
	deadline := time.After(5 * time.Second)
	for {
		peer.Write([]byte("\n--end--\n"))
		select {
		case n := <-got:
			if n >= total {
				t.Fatalf("the slow stream received %d bytes, expected some of the %d to be dropped", n, total)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("the slow stream never received output again")
		}
	}
}

// TestDeviceGone: when the other end of the line goes away mid-stream (socat
// exits and closes both pseudo-terminal masters, as when a USB adapter is
// pulled), the stream ends with an error naming the port.
func TestDeviceGone(t *testing.T) {
	p := ptypair.Start(t)
	peer := p.OpenPeer(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port})
	c := connect(t, d)
	waitListening(t, peer, c)

	p.Kill()
	_, err := io.ReadAll(c)
	wantStatus(t, err, codes.Internal, "serial port "+p.Port+" went away: the device hung up or was unplugged")

	// The next stream tries to open the port again, and says why it cannot.
	_, err = d.Stream(t.Context(), "connect")
	wantStatus(t, err, codes.Unavailable, "serial port "+p.Port+" does not exist (unplugged?)")
}

func TestClose(t *testing.T) {
	p := ptypair.Start(t)
	peer := p.OpenPeer(t)
	d := sdktest.Start(t, serial.Type, map[string]any{"url": p.Port})
	for _, end := range []struct {
		name string
		fn   func() error
	}{
		{"close()", func() error { _, err := d.Call(t.Context(), "close"); return err }},
		{"Reset", func() error { return d.Reset(t.Context()) }},
	} {
		c := connect(t, d)
		waitListening(t, peer, c)
		if err := end.fn(); err != nil {
			t.Fatalf("%s: %v", end.name, err)
		}
		if rest, err := io.ReadAll(c); err != nil {
			t.Fatalf("after %s the stream ended with %v (and %q), want a clean end", end.name, err, rest)
		}
	}
	// The port opens again for the next stream, and close() of a closed
	// port is fine.
	c := connect(t, d)
	waitListening(t, peer, c)
	if _, err := d.Call(t.Context(), "close"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(t.Context(), "close"); err != nil {
		t.Fatal(err)
	}
}

// connect opens a stream to the driver's connect method.
func connect(t *testing.T, d *sdktest.Instance) *sdktest.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), streamTimeout)
	t.Cleanup(cancel)
	c, err := d.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitListening makes sure every stream in cs receives the device's output:
// a stream reads the port from when it is set up, which a client cannot
// observe, so the device sends a probe until each stream has seen one.
func waitListening(t *testing.T, peer *os.File, cs ...*sdktest.Conn) {
	t.Helper()
	for i, c := range cs {
		seen := make(chan error, 1)
		go func() {
			b := make([]byte, 1)
			_, err := io.ReadFull(c, b)
			seen <- err
		}()
		deadline := time.After(5 * time.Second)
	probe:
		for {
			peer.Write([]byte{0})
			select {
			case err := <-seen:
				if err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
				break probe
			case <-time.After(20 * time.Millisecond):
			case <-deadline:
				t.Fatalf("stream %d never received the device's output", i)
			}
		}
	}
	// Drain the probes still queued for any stream.
	drainProbes(t, peer, cs...)
}

// drainProbes sends a marker and reads each stream up to it, so no probe
// byte is left for the test to trip over.
func drainProbes(t *testing.T, peer *os.File, cs ...*sdktest.Conn) {
	t.Helper()
	peer.Write([]byte{1})
	for i, c := range cs {
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if b[0] == 1 {
				break
			}
		}
	}
}

func readConn(t *testing.T, c *sdktest.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("client read: %v", err)
	}
	return b
}

func readPeer(t *testing.T, peer *os.File, n int) []byte {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(peer, b); err != nil {
		t.Fatalf("device read: %v", err)
	}
	return b
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	s, ok := status.FromError(err)
	if !ok || s.Code() != code || s.Message() != msg {
		if errors.Is(err, io.EOF) {
			t.Fatalf("got a clean end of stream, want %v %q", code, msg)
		}
		t.Fatalf("got %v, want %v %q", err, code, msg)
	}
}
