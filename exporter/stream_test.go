package exporter_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/ptypair"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// serveStreams starts an exporter with the network and serial plugins.
func serveStreams(t *testing.T, yaml string) (jumpstarterv1.RouterServiceClient, jumpstarterv1.ExporterServiceClient, *exporter.Exporter) {
	t.Helper()
	rx := start(t, yaml, []string{"network", "serial"})
	return rx.r, rx.c, rx.e
}

// open opens a driver stream exactly as WIRE.md says: the request header,
// then wait for the server's headers before sending.
func open(t *testing.T, r jumpstarterv1.RouterServiceClient, uuid, method string) jumpstarterv1.RouterService_StreamClient {
	t.Helper()
	req := fmt.Sprintf(`{"kind":"driver","uuid":%q,"method":%q}`, uuid, method)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "request", req)
	s, err := r.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil {
		t.Fatalf("stream headers: %v", err)
	}
	return s
}

// readAll reads DATA frames until GOAWAY, then expects the stream to end
// with ABORTED, as the server ends every stream.
func readAll(s jumpstarterv1.RouterService_StreamClient) ([]byte, error) {
	var b bytes.Buffer
	for {
		m, err := s.Recv()
		if err != nil {
			return b.Bytes(), fmt.Errorf("stream ended before GOAWAY: %w", err)
		}
		switch m.FrameType {
		case jumpstarterv1.FrameType_FRAME_TYPE_DATA:
			b.Write(m.Payload)
		case jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY:
			_, err := s.Recv()
			if status.Code(err) != codes.Aborted {
				return b.Bytes(), fmt.Errorf("after GOAWAY: %w, want ABORTED", err)
			}
			return b.Bytes(), nil
		}
	}
}

// echoServer accepts TCP connections and echoes each until its client half-closes.
func echoServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// TestRouterTCP: 8 MiB each way through client -> exporter -> network
// plugin -> TCP echo, checked with sha256, with half-close both ways.
func TestRouterTCP(t *testing.T) {
	addr := echoServer(t)
	r, c, _ := serveStreams(t, header+fmt.Sprintf("export:\n  net:\n    type: tcp\n    config: {host: 127.0.0.1, port: %d}\n", addr.Port))
	s := open(t, r, uuidOf(t, c, "net"), "connect")
	payload := make([]byte, 8<<20)
	_, _ = rand.Read(payload)
	sent := make(chan error, 1)
	go func() {
		for off := 0; off < len(payload); off += 100_000 {
			chunk := payload[off:min(off+100_000, len(payload))]
			if err := s.Send(&jumpstarterv1.StreamRequest{Payload: chunk}); err != nil {
				sent <- err
				return
			}
			_ = s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_PING})
		}
		sent <- s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY})
	}()
	got, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("echoed %d bytes that differ from the %d sent", len(got), len(payload))
	}
}

// TestRouterSerial: bytes both ways between a client and a serial port
// (a pseudo-terminal), through the serial plugin.
func TestRouterSerial(t *testing.T) {
	p := ptypair.Start(t)
	r, c, _ := serveStreams(t, header+"export:\n  console:\n    type: jumpstarter_driver_pyserial.driver.PySerial\n    config: {url: "+p.Port+"}\n")
	s := open(t, r, uuidOf(t, c, "console"), "connect")
	dev := p.OpenPeer(t)
	if _, err := dev.Write([]byte("login: ")); err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || string(m.Payload) != "login: " {
		t.Fatalf("from the device: %q, %v", m.GetPayload(), err)
	}
	if err := s.Send(&jumpstarterv1.StreamRequest{Payload: []byte("root\r")}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	_ = dev.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(dev, buf); err != nil || string(buf) != "root\r" {
		t.Fatalf("at the device: %q, %v", buf, err)
	}
}

// TestStreamEndsWithSession: ending the session closes its streams, and the
// client is told why.
func TestStreamEndsWithSession(t *testing.T) {
	addr := echoServer(t)
	r, c, _ := serveStreams(t, header+fmt.Sprintf("export:\n  net:\n    type: tcp\n    config: {host: 127.0.0.1, port: %d}\n", addr.Port))
	s := open(t, r, uuidOf(t, c, "net"), "connect")
	if _, err := c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := readAll(s)
	if st := status.Convert(errors.Unwrap(err)); err == nil || st.Code() != codes.Unavailable || st.Message() != "the session ended" {
		t.Errorf("stream after EndSession: %v, want UNAVAILABLE: the session ended", err)
	}
}

// TestSlowReader: a client that reads nothing holds the driver back; the
// exporter does not buffer what the client cannot take.
func TestSlowReader(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var written atomic.Int64
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		chunk := make([]byte, 64<<10)
		for written.Load() < 1<<30 {
			n, err := conn.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	r, c, _ := serveStreams(t, header+fmt.Sprintf("export:\n  net:\n    type: tcp\n    config: {host: 127.0.0.1, port: %d}\n", l.Addr().(*net.TCPAddr).Port))
	open(t, r, uuidOf(t, c, "net"), "connect")
	// Wait until the target's writes stall: flow control reached it.
	last, still := int64(-1), 0
	deadline := time.Now().Add(30 * time.Second)
	for still < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if w := written.Load(); w == last {
			still++
		} else {
			last, still = w, 0
		}
	}
	// Socket buffers and gRPC windows on three hops hold some megabytes; a
	// relay that buffered would have taken the whole gigabyte.
	if w := written.Load(); still < 10 || w > 256<<20 {
		t.Errorf("the target wrote %d MiB to a client reading nothing (stalled: %v)", w>>20, still >= 10)
	}
}

func TestBadStreamRequests(t *testing.T) {
	r, c, _ := serveStreams(t, header+"export:\n  net:\n    type: tcp\n    config: {host: 127.0.0.1, port: 9}\n")
	net := uuidOf(t, c, "net")
	tests := []struct {
		header string
		code   codes.Code
		msg    string
	}{
		{"", codes.InvalidArgument, `a stream needs exactly one "request" metadata value`},
		{`{"kind":"driver"`, codes.InvalidArgument, `stream request header "{\"kind\":\"driver\"": unexpected EOF`},
		{`{"kind":"driver","uuid":"` + net + `","method":"connect","extra":1}`, codes.InvalidArgument, `json: unknown field "extra"`},
		{`{"kind":"teleport","uuid":"x","method":"y"}`, codes.InvalidArgument, `kind "teleport" is not "driver" or "resource"`},
		{`{"kind":"driver","uuid":"nope","method":"connect"}`, codes.NotFound, `no driver instance with uuid "nope"`},
		{`{"kind":"driver","uuid":"` + net + `","method":"address"}`, codes.InvalidArgument, `address is a unary method; call it as one`},
		{`{"kind":"driver","uuid":"` + net + `","method":"connect"}`, codes.Unavailable, `cannot connect to tcp://127.0.0.1:9`},
	}
	for _, tt := range tests {
		ctx := t.Context()
		if tt.header != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "request", tt.header)
		}
		s, err := r.Stream(ctx)
		if err == nil {
			_, err = s.Recv()
			for err == nil {
				_, err = s.Recv()
			}
		}
		st := status.Convert(err)
		if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
			t.Errorf("header %s: got %v %q, want %v containing %q", tt.header, st.Code(), st.Message(), tt.code, tt.msg)
		}
	}
}

// TestRouterDriverWithoutSDK streams through a driver that uses grpc-go's
// own protobuf codec, as a driver in another language would, from a client
// that does too: the exporter relays their frames as they are encoded, so
// both must read them. The payload is large enough to arrive in many HTTP/2
// frames, and the frames come in every size.
func TestRouterDriverWithoutSDK(t *testing.T) {
	dir := t.TempDir()
	if err := os.Link(testbin.Build(t, "./internal/testplugins/plainproto"), filepath.Join(dir, "jumpwire-driver-plain")); err != nil {
		t.Fatal(err)
	}
	rx := start(t, header+"export:\n  plain:\n    type: plain\n", nil, func(o *exporter.Options) {
		o.PluginDirs = append(o.PluginDirs, dir)
	})
	s := open(t, rx.r, uuidOf(t, rx.c, "plain"), "upper")
	payload := bytes.Repeat([]byte("jumpwire "), 400_000) // 3.6 MB
	sent := make(chan error, 1)
	go func() {
		for off, size := 0, 1; off < len(payload); off, size = off+size, size*3 {
			chunk := payload[off:min(off+size, len(payload))]
			if err := s.Send(&jumpstarterv1.StreamRequest{Payload: chunk}); err != nil {
				sent <- err
				return
			}
		}
		sent <- s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY})
	}()
	got, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.ToUpper(payload)) {
		t.Fatalf("got %d bytes back that are not the %d sent in upper case", len(got), len(payload))
	}
}
