package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// streamLab is the lab plus a driver "bytes" with byte streams:
//   - echo sends back what it receives;
//   - emit sends "hello ", two empty frames and a PING, "world", then ends (GOAWAY, ABORTED);
//   - die sends "partial" and fails with UNAVAILABLE, as a driver that was killed;
//   - abort fails with ABORTED without a GOAWAY;
//   - sum reads everything, then sends "<length> <sha256>" and ends;
//   - upload sends GOAWAY at once, reads everything and reports "<length> <sha256>" on uploaded;
//   - on is a unary method.
func streamLab(t *testing.T) (*client.Client, string, *fakeexporter.Exporter, chan string) {
	t.Helper()
	uploaded := make(chan string, 1)
	fake := fakeexporter.Lab()
	fake.Root.Children = append(fake.Root.Children, &fakeexporter.Driver{
		Name: "bytes", Type: "bytes",
		Methods: []fakeexporter.Method{
			{Name: "echo", Kind: "stream", Connect: fakeexporter.Echo},
			{Name: "emit", Kind: "stream", Connect: func(_ context.Context, c *fakeexporter.StreamConn) error {
				for _, f := range []string{"hello ", "", ""} {
					if err := c.Send([]byte(f)); err != nil {
						return err
					}
				}
				if err := c.SendFrame(jumpstarterv1.FrameType_FRAME_TYPE_PING, nil); err != nil {
					return err
				}
				return c.Send([]byte("world"))
			}},
			{Name: "die", Kind: "stream", Connect: fakeexporter.FailAfter([]byte("partial"),
				status.Error(codes.Unavailable, `driver "bytes" exited (signal: killed)`))},
			{Name: "abort", Kind: "stream", Connect: func(context.Context, *fakeexporter.StreamConn) error {
				return status.Error(codes.Aborted, "relay gone")
			}},
			{Name: "sum", Kind: "stream", Connect: func(_ context.Context, c *fakeexporter.StreamConn) error {
				digest, err := readAll(c)
				if err != nil {
					return err
				}
				return c.Send([]byte(digest))
			}},
			{Name: "upload", Kind: "stream", Connect: func(_ context.Context, c *fakeexporter.StreamConn) error {
				if err := c.CloseSend(); err != nil {
					return err
				}
				digest, err := readAll(c)
				if err != nil {
					return err
				}
				uploaded <- digest
				return nil
			}},
			{Name: "on"},
		},
	})
	c := dial(t, fake)
	if _, err := c.Tree(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c, fakeexporter.UUID("bytes"), fake, uploaded
}

// readAll reads a fake stream to its end and describes what it read as "<length> <sha256>".
func readAll(c *fakeexporter.StreamConn) (string, error) {
	h := sha256.New()
	n := 0
	for {
		p, err := c.Recv()
		if errors.Is(err, io.EOF) {
			return describe(n, h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
		n += len(p)
		h.Write(p)
	}
}

func describe(n int, sum []byte) string { return fmt.Sprintf("%d %s", n, hex.EncodeToString(sum)) }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return describe(len(b), sum[:])
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func openStream(t *testing.T, c *client.Client, uuid, method string) *client.Stream {
	t.Helper()
	s, err := c.Stream(t.Context(), uuid, method)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStreamRoundTrip(t *testing.T) {
	c, uuid, _, _ := streamLab(t)
	s := openStream(t, c, uuid, "echo")
	buf := make([]byte, 16)
	for _, msg := range []string{"ping", "second message"} {
		if _, err := s.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:len(msg)]); got != msg {
			t.Errorf("echo %q, want %q", got, msg)
		}
	}
	if n, err := s.Write(nil); n != 0 || err != nil {
		t.Errorf("empty Write = %d, %v", n, err)
	}
	if _, err := s.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Errorf("second CloseWrite: %v", err)
	}
	rest, err := io.ReadAll(s)
	if err != nil || string(rest) != "last" {
		t.Errorf("after CloseWrite read %q, %v; want \"last\", nil", rest, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, client.ErrStreamClosed) {
		t.Errorf("Write after CloseWrite: %v, want ErrStreamClosed", err)
	}
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Errorf("Err after a normal end: %v", err)
	}
}

// TestStreamHalfCloseFromClient: after the client's CloseWrite the driver still sends.
func TestStreamHalfCloseFromClient(t *testing.T) {
	c, uuid, _, _ := streamLab(t)
	s := openStream(t, c, uuid, "sum")
	data := randomBytes(t, 3<<20+12345)
	// One write of more than MaxFrameSize, split into frames, then small ones.
	if _, err := s.Write(data[:2<<20+7]); err != nil {
		t.Fatal(err)
	}
	for rest := data[2<<20+7:]; len(rest) > 0; {
		n := min(len(rest), 100_000)
		if _, err := s.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := digestOf(data); string(got) != want {
		t.Errorf("driver received %s, want %s", got, want)
	}
}

// TestStreamHalfCloseFromDriver: after the driver's GOAWAY (Read: io.EOF) the client still sends.
func TestStreamHalfCloseFromDriver(t *testing.T) {
	c, uuid, _, uploaded := streamLab(t)
	s := openStream(t, c, uuid, "upload")
	if n, err := s.Read(make([]byte, 10)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Read = %d, %v; want io.EOF", n, err)
	}
	data := randomBytes(t, 2<<20)
	if _, err := s.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-uploaded:
		if want := digestOf(data); got != want {
			t.Errorf("driver received %s, want %s", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the driver did not get the upload")
	}
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Errorf("Err after GOAWAY and ABORTED: %v, want nil", err)
	}
}

func TestStreamLargeEcho(t *testing.T) {
	c, uuid, _, _ := streamLab(t)
	s := openStream(t, c, uuid, "echo")
	data := randomBytes(t, 5<<20)
	werr := make(chan error, 1)
	go func() {
		// Writes of odd sizes, one above MaxFrameSize.
		sizes := []int{1, 4096, client.MaxFrameSize + 3, 65535}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := min(len(rest), sizes[i%len(sizes)])
			if _, err := s.Write(rest[:n]); err != nil {
				werr <- err
				return
			}
			rest = rest[n:]
		}
		werr <- s.CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if got, want := describe(int(n), h.Sum(nil)), digestOf(data); got != want {
		t.Errorf("echoed %s, want %s", got, want)
	}
}

func TestStreamSkipsEmptyFramesAndPings(t *testing.T) {
	c, uuid, _, _ := streamLab(t)
	t.Run("Read", func(t *testing.T) {
		s := openStream(t, c, uuid, "emit")
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "hello world" {
			t.Errorf("read %q, %v; want \"hello world\", nil", got, err)
		}
	})
	t.Run("ReadFrame", func(t *testing.T) {
		s := openStream(t, c, uuid, "emit")
		var frames []string
		for {
			f, err := s.ReadFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, string(f))
		}
		if strings.Join(frames, "|") != "hello |world" {
			t.Errorf("frames %q, want [\"hello \" \"world\"]", frames)
		}
	})
}

func TestStreamEnds(t *testing.T) {
	c, uuid, _, _ := streamLab(t)
	tests := []struct {
		method string
		data   string
		err    string // "" for io.EOF
		code   codes.Code
	}{
		{"emit", "hello world", "", codes.OK},
		{"die", "partial", `bytes.die: unavailable: driver "bytes" exited (signal: killed)`, codes.Unavailable},
		{"abort", "", "bytes.abort: aborted: relay gone", codes.Aborted},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			s := openStream(t, c, uuid, tt.method)
			got, err := io.ReadAll(s)
			if string(got) != tt.data {
				t.Errorf("read %q, want %q", got, tt.data)
			}
			if tt.err == "" {
				if err != nil {
					t.Errorf("error %v, want io.EOF", err)
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if status.Code(err) != tt.code {
				t.Errorf("code %v, want %v", status.Code(err), tt.code)
			}
			if _, err2 := s.Read(make([]byte, 1)); err2 == nil || err2.Error() != tt.err {
				t.Errorf("second Read: %v, want the same error", err2)
			}
			<-s.Done()
			if s.Err() == nil || s.Err().Error() != tt.err {
				t.Errorf("Err() = %v", s.Err())
			}
			// A write after the end says why.
			if _, err := s.Write([]byte("x")); err == nil || err.Error() != tt.err {
				t.Errorf("Write after the end: %v, want %q", err, tt.err)
			}
		})
	}
}

func TestStreamOpenErrors(t *testing.T) {
	c, uuid, fake, _ := streamLab(t)
	tests := []struct {
		name, uuid, method, want string
		code                     codes.Code
	}{
		{"unknown method", uuid, "nope", `bytes.nope: not found: driver "bytes" has no method "nope"`, codes.NotFound},
		{"unknown driver", "uuid-nowhere", "connect", "uuid-nowhere.connect: not found: no driver with uuid uuid-nowhere", codes.NotFound},
		{"not a stream", uuid, "on", `bytes.on: unimplemented: method "on" is not a byte stream`, codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.Stream(t.Context(), tt.uuid, tt.method)
			if err == nil {
				s.Close()
				t.Fatal("Stream succeeded")
			}
			if err.Error() != tt.want || status.Code(err) != tt.code {
				t.Errorf("error %v (%v), want %q (%v)", err, status.Code(err), tt.want, tt.code)
			}
		})
	}
	if n := fake.OpenStreams(); n != 0 {
		t.Errorf("%d streams open after refusals", n)
	}
}

func TestStreamClose(t *testing.T) {
	c, uuid, fake, _ := streamLab(t)
	s := openStream(t, c, uuid, "echo")
	readErr := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		readErr <- err
	}()
	waitFor(t, "the stream to open on the fake", func() bool { return fake.OpenStreams() == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, client.ErrStreamClosed) {
		t.Errorf("blocked Read after Close: %v, want ErrStreamClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, client.ErrStreamClosed) {
		t.Errorf("Write after Close: %v, want ErrStreamClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitFor(t, "the fake to see the stream end", func() bool { return fake.OpenStreams() == 0 })
}

func TestStreamContextCanceled(t *testing.T) {
	c, uuid, _, _ := streamLab(t)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := c.Stream(ctx, uuid, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	_, err = s.Read(make([]byte, 1))
	if status.Code(err) != codes.Canceled || err.Error() != "bytes.echo: canceled" {
		t.Errorf("Read after cancel: %v, want bytes.echo: canceled", err)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (local, remote *net.TCPConn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := lis.Accept()
		accepted <- conn
	}()
	remoteConn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	localConn := <-accepted
	if localConn == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = localConn.Close(); _ = remoteConn.Close() })
	return localConn.(*net.TCPConn), remoteConn.(*net.TCPConn)
}

func TestForward(t *testing.T) {
	c, uuid, _, uploaded := streamLab(t)
	forward := func(method string, conn net.Conn) chan error {
		done := make(chan error, 1)
		go func() { done <- c.Forward(t.Context(), uuid, method, conn) }()
		return done
	}
	wait := func(t *testing.T, done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("Forward did not return")
			return nil
		}
	}

	t.Run("echo with half-close from the local side", func(t *testing.T) {
		local, remote := tcpPair(t)
		done := forward("echo", local)
		data := randomBytes(t, 3<<20)
		go func() {
			_, _ = remote.Write(data)
			_ = remote.CloseWrite()
		}()
		got, err := io.ReadAll(remote)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("echoed %d bytes, want the %d sent", len(got), len(data))
		}
		if err := wait(t, done); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})
	t.Run("half-close from the driver", func(t *testing.T) {
		local, remote := tcpPair(t)
		done := forward("upload", local)
		if n, err := remote.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("remote Read = %d, %v; want EOF (the driver's GOAWAY)", n, err)
		}
		data := randomBytes(t, 1<<20)
		if _, err := remote.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := remote.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if got, want := <-uploaded, digestOf(data); got != want {
			t.Errorf("driver received %s, want %s", got, want)
		}
		if err := wait(t, done); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})
	t.Run("stream over closes the connection", func(t *testing.T) {
		local, remote := tcpPair(t)
		done := forward("emit", local)
		got, err := io.ReadAll(remote)
		if err != nil || string(got) != "hello world" {
			t.Errorf("read %q, %v", got, err)
		}
		// The remote side never closes: Forward returns because the exporter ended the stream.
		if err := wait(t, done); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})
	t.Run("driver dies", func(t *testing.T) {
		local, remote := tcpPair(t)
		done := forward("die", local)
		got, _ := io.ReadAll(remote)
		if string(got) != "partial" {
			t.Errorf("read %q", got)
		}
		want := `bytes.die: unavailable: driver "bytes" exited (signal: killed)`
		if err := wait(t, done); err == nil || err.Error() != want {
			t.Errorf("Forward: %v, want %q", err, want)
		}
	})
	t.Run("refused", func(t *testing.T) {
		local, remote := tcpPair(t)
		done := forward("nope", local)
		if err := wait(t, done); status.Code(err) != codes.NotFound {
			t.Errorf("Forward: %v, want not found", err)
		}
		if n, err := remote.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("the local connection was not closed: %d, %v", n, err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		local, _ := tcpPair(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Forward(ctx, uuid, "echo", local) }()
		cancel()
		if err := wait(t, done); status.Code(err) != codes.Canceled {
			t.Errorf("Forward: %v, want canceled", err)
		}
	})
}
