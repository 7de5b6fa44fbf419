package network_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/drivers/network"
	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// timeout bounds every stream and every server-side connection, so a broken
// driver fails a test instead of hanging it.
const timeout = 10 * time.Second

func TestConfigRejected(t *testing.T) {
	tests := []struct {
		name string
		typ  sdk.Type
		cfg  map[string]any
		want string
	}{
		{"no host", network.TCP, map[string]any{"port": 22}, "host: required: the target's host name or IP address"},
		{"no port", network.TCP, map[string]any{"host": "dut"}, "port: required: the target's port, 1 to 65535"},
		{"port too high", network.UDP, map[string]any{"host": "dut", "port": 70000}, "port: must be between 1 and 65535, got 70000"},
		{"negative port", network.TCP, map[string]any{"host": "dut", "port": -1}, "port: must be between 1 and 65535, got -1"},
		{"negative timeout", network.TCP, map[string]any{"host": "dut", "port": 22, "connect_timeout": "-1s"}, "connect_timeout: must be positive, got -1s"},
		{"port name", network.TCP, map[string]any{"host": "dut", "port": "ssh"}, `port: expected integer, got string "ssh"`},
		{"unknown key", network.TCP, map[string]any{"host": "dut", "port": 22, "path": "/x"}, "path: unknown key; valid keys: connect_timeout, enable_address, host, port"},
		{"no path", network.Unix, map[string]any{}, "path: required: the unix socket's path"},
		{"unix unknown key", network.Unix, map[string]any{"path": "/x", "host": "dut"}, "host: unknown key; valid keys: connect_timeout, path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Configure(t, tt.typ, tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAddress(t *testing.T) {
	tests := []struct {
		typ  sdk.Type
		cfg  map[string]any
		want []string // any of
	}{
		{network.TCP, map[string]any{"host": "127.0.0.1", "port": 8080}, []string{"tcp://127.0.0.1:8080"}},
		{network.UDP, map[string]any{"host": "::1", "port": 53}, []string{"udp://[::1]:53"}},
		{network.TCP, map[string]any{"host": "localhost", "port": 22}, []string{"tcp://127.0.0.1:22", "tcp://[::1]:22"}},
		{network.Unix, map[string]any{"path": "/run/dut/console.sock"}, []string{"unix:///run/dut/console.sock"}},
	}
	for _, tt := range tests {
		d := sdktest.Start(t, tt.typ, tt.cfg)
		got, err := d.Call(t.Context(), "address")
		if err != nil || !contains(tt.want, got) {
			t.Errorf("%s %v: address() = %v, %v; want one of %q", tt.typ.Name, tt.cfg, got, err, tt.want)
		}
		if tt.typ.Name != "unix" && d.Configured.Description != tt.want[0] && tt.cfg["host"] != "localhost" {
			t.Errorf("description %q, want %q", d.Configured.Description, tt.want[0])
		}
	}
	d := sdktest.Start(t, network.TCP, map[string]any{"host": "127.0.0.1", "port": 8080, "enable_address": false})
	_, err := d.Call(t.Context(), "address")
	wantStatus(t, err, codes.Unimplemented, "address: disabled by enable_address: false in the exporter config")
}

// streamKinds are the stream-oriented network types, each with a way to
// start a server for it.
var streamKinds = []struct {
	name   string
	typ    sdk.Type
	listen func(t *testing.T) (net.Listener, map[string]any)
}{
	{"tcp", network.TCP, func(t *testing.T) (net.Listener, map[string]any) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l, map[string]any{"host": "127.0.0.1", "port": l.Addr().(*net.TCPAddr).Port}
	}},
	{"unix", network.Unix, func(t *testing.T) (net.Listener, map[string]any) {
		path := filepath.Join(shortTempDir(t), "s.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		return l, map[string]any{"path": path}
	}},
}

// serve starts a server of the kind that runs handle on each connection and
// returns the driver's config for it. The test ends only after every handler
// returned.
func serve(t *testing.T, listen func(*testing.T) (net.Listener, map[string]any), handle func(c net.Conn)) map[string]any {
	t.Helper()
	l, cfg := listen(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(timeout))
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return cfg
}

// TestClientHalfClose: the client sends its request and half-closes; the
// server reads to the end, answers, and the client reads the whole answer.
func TestClientHalfClose(t *testing.T) {
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			cfg := serve(t, k.listen, func(c net.Conn) {
				req, err := io.ReadAll(c)
				if err != nil {
					t.Errorf("server read: %v", err)
					return
				}
				fmt.Fprintf(c, "received %q", req)
			})
			c := connect(t, sdktest.Start(t, k.typ, cfg))
			c.Write([]byte("hello, "))
			c.Write([]byte("world"))
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != `received "hello, world"` {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

// TestServerHalfClose: the server sends a banner and half-closes first; the
// client sees the end of data and can still send, until it half-closes too.
func TestServerHalfClose(t *testing.T) {
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			received := make(chan string, 1)
			cfg := serve(t, k.listen, func(c net.Conn) {
				c.Write([]byte("banner\n"))
				if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
					t.Errorf("server half-close: %v", err)
				}
				b, err := io.ReadAll(c)
				if err != nil {
					t.Errorf("server read: %v", err)
				}
				received <- string(b)
			})
			c := connect(t, sdktest.Start(t, k.typ, cfg))
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "banner\n" {
				t.Fatalf("client got %q, %v; want the banner, then the end of data", got, err)
			}
			c.Write([]byte("still "))
			c.Write([]byte("here"))
			c.CloseWrite()
			if got := <-received; got != "still here" {
				t.Fatalf("server got %q after its half-close", got)
			}
		})
	}
}

func TestLargeTransfer(t *testing.T) {
	const size = 4 << 20
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			up, down := randomBytes(t, size), randomBytes(t, size)
			serverGot := make(chan [sha256.Size]byte, 1)
			cfg := serve(t, k.listen, func(c net.Conn) {
				var wg sync.WaitGroup
				wg.Go(func() {
					if _, err := c.Write(down); err != nil {
						t.Errorf("server write: %v", err)
					}
					c.(interface{ CloseWrite() error }).CloseWrite()
				})
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil {
					t.Errorf("server read: %v", err)
				}
				serverGot <- [sha256.Size]byte(h.Sum(nil))
				wg.Wait()
			})
			c := connect(t, sdktest.Start(t, k.typ, cfg))
			sent := make(chan error, 1)
			go func() {
				for b := up; len(b) > 0; b = b[min(len(b), 256<<10):] {
					if _, err := c.Write(b[:min(len(b), 256<<10)]); err != nil {
						sent <- err
						return
					}
				}
				sent <- c.CloseWrite()
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != size {
				t.Fatalf("client read %d bytes, %v; want %d", n, err, size)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if got, want := [sha256.Size]byte(h.Sum(nil)), sha256.Sum256(down); got != want {
				t.Errorf("server -> client: sha256 %x, want %x", got, want)
			}
			if got, want := <-serverGot, sha256.Sum256(up); got != want {
				t.Errorf("client -> server: sha256 %x, want %x", got, want)
			}
		})
	}
}

// TestClientGone: when the client goes away, the target's connection closes.
func TestClientGone(t *testing.T) {
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			closed := make(chan error, 1)
			cfg := serve(t, k.listen, func(c net.Conn) {
				c.Write([]byte("hi"))
				_, err := io.ReadAll(c)
				closed <- err
			})
			ctx, cancel := context.WithCancel(t.Context())
			c, err := sdktest.Start(t, k.typ, cfg).Stream(ctx, "connect")
			if err != nil {
				t.Fatal(err)
			}
			readN(t, c, 2)
			cancel()
			if err := <-closed; err != nil {
				t.Fatalf("the server's connection did not end cleanly: %v", err)
			}
		})
	}
}

func TestTargetReset(t *testing.T) {
	l, cfg := streamKinds[0].listen(t)
	cfg = serve(t, func(*testing.T) (net.Listener, map[string]any) { return l, cfg }, func(c net.Conn) {
		// The reset follows the client's first byte: a reset that came
		// while the driver was still connecting would fail the connect
		// instead (ECONNRESET from connect), which TestUnreachable covers.
		c.Read(make([]byte, 1))
		c.Write([]byte("bye"))
		c.(*net.TCPConn).SetLinger(0) // close with a reset
	})
	c := connect(t, sdktest.Start(t, network.TCP, cfg))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadAll(c)
	wantStatus(t, err, codes.Internal, fmt.Sprintf("tcp://127.0.0.1:%v: read: connection reset by peer", cfg["port"]))
}

func TestUnreachable(t *testing.T) {
	port := freePort(t, "tcp")
	missing := filepath.Join(shortTempDir(t), "missing.sock")
	tests := []struct {
		typ  sdk.Type
		cfg  map[string]any
		want string
	}{
		{network.TCP, map[string]any{"host": "127.0.0.1", "port": port}, fmt.Sprintf("cannot connect to tcp://127.0.0.1:%d: connect: connection refused", port)},
		{network.Unix, map[string]any{"path": missing}, "cannot connect to unix://" + missing + ": connect: no such file or directory"},
	}
	for _, tt := range tests {
		// The stream fails to open, with the reason.
		_, err := sdktest.Start(t, tt.typ, tt.cfg).Stream(t.Context(), "connect")
		wantStatus(t, err, codes.Unavailable, tt.want)
	}

	// UDP has no handshake: the first datagram finds out.
	port = freePort(t, "udp")
	c := connect(t, sdktest.Start(t, network.UDP, map[string]any{"host": "127.0.0.1", "port": port}))
	c.Write([]byte("ping"))
	_, err := c.Read(make([]byte, 1))
	wantStatus(t, err, codes.Unavailable, fmt.Sprintf("udp://127.0.0.1:%d: nothing is listening there (read: connection refused)", port))
}

// TestUDPDatagrams: every frame is one datagram and every datagram one
// frame, whatever their sizes.
func TestUDPDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sizes := make(chan int, 100)
	var wg sync.WaitGroup
	wg.Go(func() { // echo each datagram, reversed, so the reply is distinct
		buf := make([]byte, 1<<16)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			sizes <- n
			pc.WriteTo(reversed(buf[:n]), from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c := connect(t, sdktest.Start(t, network.UDP, map[string]any{"host": "127.0.0.1", "port": port}))

	buf := make([]byte, 1<<17)
	for _, size := range []int{1, 7, 512, 1472, 9000, 65507} {
		msg := randomBytes(t, size)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d-byte datagram: %v", size, err)
		}
		if got := <-sizes; got != size {
			t.Errorf("a %d-byte frame arrived as a %d-byte datagram", size, got)
		}
		if !bytes.Equal(buf[:n], reversed(msg)) {
			t.Errorf("a %d-byte datagram came back as a %d-byte frame", size, n)
		}
	}

	// A frame no datagram can carry ends the stream with a clear error.
	c.Write(make([]byte, 70000))
	_, err = io.ReadAll(c)
	wantStatus(t, err, codes.InvalidArgument, fmt.Sprintf("udp://127.0.0.1:%d: a frame of more than 65527 bytes does not fit in one datagram", port))
}

// connect opens a stream to the driver's connect method.
func connect(t *testing.T, d *sdktest.Instance) *sdktest.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	c, err := d.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

// freePort returns a local port nothing listens on.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

// shortTempDir is a temporary directory with a path short enough for unix
// sockets (t.TempDir's, named after the test, may not be).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "jw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}

func contains(list []string, v any) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	s, ok := status.FromError(err)
	if !ok || s.Code() != code || s.Message() != msg {
		if errors.Is(err, io.EOF) || err == nil {
			t.Fatalf("got a clean end of stream, want %v %q", code, msg)
		}
		t.Fatalf("got %v, want %v %q", err, code, msg)
	}
}

// TestPlugin: the binary's three types fit in one plugin and describe
// themselves with the upstream names.
func TestPlugin(t *testing.T) {
	rpc := sdktest.Serve(t, sdk.Plugin{Version: "test", Drivers: []sdk.Type{network.TCP, network.UDP, network.Unix}})
	desc, err := rpc.Describe(t.Context(), &pluginv1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, typ := range desc.Types {
		var methods []string
		for _, m := range typ.Methods {
			methods = append(methods, m.Name)
		}
		got = append(got, fmt.Sprintf("%s %v %s %v", typ.Name, typ.Aliases, typ.Client, methods))
	}
	want := []string{
		"tcp [jumpstarter_driver_network.driver.TcpNetwork] jumpstarter_driver_network.client.NetworkClient [connect address]",
		"udp [jumpstarter_driver_network.driver.UdpNetwork] jumpstarter_driver_network.client.NetworkClient [connect address]",
		"unix [jumpstarter_driver_network.driver.UnixNetwork] jumpstarter_driver_network.client.NetworkClient [connect address]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("types:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
