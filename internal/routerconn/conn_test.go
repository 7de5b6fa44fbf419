package routerconn

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// fakeStream replays frames to Read and records what Write sends, each
// as the router would see it (a StreamRequest).
type fakeStream struct {
	in   []*jumpstarterv1.StreamResponse
	sent []*jumpstarterv1.StreamRequest
}

func (f *fakeStream) RecvMsg(m any) error {
	if len(f.in) == 0 {
		return io.EOF
	}
	b, err := proto.Marshal(f.in[0])
	if err != nil {
		return err
	}
	f.in = f.in[1:]
	return protocol.Codec.Unmarshal(memOf(b), m)
}

func (f *fakeStream) SendMsg(m any) error {
	data, err := protocol.Codec.Marshal(m)
	if err != nil {
		return err
	}
	var req jumpstarterv1.StreamRequest
	if err := proto.Unmarshal(data.Materialize(), &req); err != nil {
		return err
	}
	data.Free()
	f.sent = append(f.sent, &req)
	return nil
}

func frame(t jumpstarterv1.FrameType, p string) *jumpstarterv1.StreamResponse {
	return &jumpstarterv1.StreamResponse{FrameType: t, Payload: []byte(p)}
}

// TestRead: DATA payloads are the bytes, in order and across small reads;
// PING and empty DATA frames carry nothing; GOAWAY is the end.
func TestRead(t *testing.T) {
	s := &fakeStream{in: []*jumpstarterv1.StreamResponse{
		frame(jumpstarterv1.FrameType_FRAME_TYPE_DATA, "hello "),
		frame(jumpstarterv1.FrameType_FRAME_TYPE_PING, ""),
		frame(jumpstarterv1.FrameType_FRAME_TYPE_DATA, ""),
		frame(jumpstarterv1.FrameType_FRAME_TYPE_DATA, "router"),
		frame(jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY, ""),
		frame(jumpstarterv1.FrameType_FRAME_TYPE_DATA, "after goaway"),
	}}
	c := New(s, nil, Addr("a"), Addr("b"))
	var got strings.Builder
	buf := make([]byte, 4)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != "hello router" {
		t.Fatalf("read %q, want %q", got.String(), "hello router")
	}
}

// TestReadReset: RST_STREAM is an error, not a clean end.
func TestReadReset(t *testing.T) {
	c := New(&fakeStream{in: []*jumpstarterv1.StreamResponse{frame(jumpstarterv1.FrameType_FRAME_TYPE_RST_STREAM, "")}}, nil, Addr("a"), Addr("b"))
	if _, err := c.Read(make([]byte, 8)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read after RST_STREAM: %v, want an error", err)
	}
}

// TestWriteClose: each Write is one DATA frame; Close says GOAWAY once and
// ends the stream; writes after it fail.
func TestWriteClose(t *testing.T) {
	s := &fakeStream{}
	ended := 0
	c := New(s, func() { ended++ }, Addr("a"), Addr("b"))
	for _, p := range []string{"one", "two"} {
		if n, err := c.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("write %q: %d, %v", p, n, err)
		}
	}
	c.Close()
	c.Close()
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
	want := []string{"DATA one", "DATA two", "GOAWAY "}
	if len(s.sent) != len(want) || ended != 1 {
		t.Fatalf("sent %v, ended %d times; want %v, once", s.sent, ended, want)
	}
	for i, r := range s.sent {
		if got := strings.TrimPrefix(r.FrameType.String(), "FRAME_TYPE_") + " " + string(r.Payload); got != want[i] {
			t.Errorf("frame %d: %q, want %q", i, got, want[i])
		}
	}
}

func memOf(b []byte) mem.BufferSlice { return mem.BufferSlice{mem.SliceBuffer(b)} }
