package sdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// pipeStream is a frameStream whose RecvMsg serves frames from a channel.
// Frames cross it encoded by protocol.Codec, as they cross gRPC.
type pipeStream struct {
	in   chan *pluginv1.Frame
	sent []*pluginv1.Frame
}

func (p *pipeStream) SendMsg(m any) error {
	f := new(pluginv1.Frame)
	if err := recode(m, f); err != nil {
		return err
	}
	p.sent = append(p.sent, f)
	return nil
}

func (p *pipeStream) RecvMsg(m any) error {
	f, ok := <-p.in
	if !ok {
		return io.EOF
	}
	return recode(f, m)
}

// recode encodes from and decodes the encoding into to.
func recode(from, to any) error {
	data, err := protocol.Codec.Marshal(from)
	if err != nil {
		return err
	}
	defer data.Free()
	return protocol.Codec.Unmarshal(data, to)
}

func TestConnCloseUnblocksRead(t *testing.T) {
	ps := &pipeStream{in: make(chan *pluginv1.Frame)}
	c := newStreamConn(t.Context(), ps)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	close(ps.in)
}

func TestConnFrames(t *testing.T) {
	ps := &pipeStream{in: make(chan *pluginv1.Frame, 4)}
	ps.in <- &pluginv1.Frame{Payload: []byte("ab")}
	ps.in <- &pluginv1.Frame{} // an empty DATA frame carries nothing
	ps.in <- &pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_PING}
	ps.in <- &pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY}
	c := newStreamConn(context.Background(), ps)
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "ab" {
		t.Errorf("read %q, %v; want \"ab\" then EOF at GOAWAY", b, err)
	}
	if _, err := c.Write(nil); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, maxFrame+1)
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write(big) = %d, %v", n, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, f := range ps.sent {
		sizes = append(sizes, len(f.Payload))
	}
	if len(ps.sent) != 4 || sizes[0] != 0 || sizes[1] != maxFrame || sizes[2] != 1 ||
		ps.sent[3].Kind != pluginv1.FrameKind_FRAME_KIND_GOAWAY {
		t.Errorf("sent frames of sizes %v (last %v); want an empty frame, a split write, GOAWAY", sizes, ps.sent[len(ps.sent)-1].Kind)
	}
	close(ps.in)
}

func TestErrorf(t *testing.T) {
	err := Errorf(ErrUnavailable, "board %s does not answer", "10.0.0.7:5000")
	if !errors.Is(err, ErrUnavailable) || err.Error() != "board 10.0.0.7:5000 does not answer" || Code(err).String() != "Unavailable" {
		t.Errorf("Errorf: %v (%v)", err, Code(err))
	}
}

func TestConnCopiesFrames(t *testing.T) {
	// io.Copy out of a Conn (its WriteTo) hands over every DATA frame and
	// stops at GOAWAY.
	ps := &pipeStream{in: make(chan *pluginv1.Frame, 4)}
	ps.in <- &pluginv1.Frame{Payload: []byte("abc")}
	ps.in <- &pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_PING}
	ps.in <- &pluginv1.Frame{Payload: []byte("def")}
	ps.in <- &pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY}
	c := newStreamConn(context.Background(), ps)
	defer c.Close()
	var out bytes.Buffer
	// A Read first leaves part of a frame for WriteTo.
	p := make([]byte, 1)
	if _, err := c.Read(p); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(&out, c); err != nil || n != 5 || string(p)+out.String() != "abcdef" {
		t.Errorf("copied %d bytes %q, %v; want \"bcdef\"", n, out.String(), err)
	}

	// io.Copy into a Conn (its ReadFrom) sends each read as one frame, and
	// does not half-close.
	data := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16)
	if n, err := c.ReadFrom(iotest.OneByteReader(bytes.NewReader(data[:3]))); err != nil || n != 3 {
		t.Fatalf("ReadFrom one byte at a time: %d, %v", n, err)
	}
	if n, err := c.ReadFrom(bytes.NewReader(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	var got []byte
	for i, f := range ps.sent {
		if f.Kind != pluginv1.FrameKind_FRAME_KIND_DATA || (i < 3 && len(f.Payload) != 1) {
			t.Fatalf("frame %d: kind %v, %d bytes", i, f.Kind, len(f.Payload))
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, append(data[:3:3], data...)) {
		t.Errorf("the frames sent carry %d bytes that differ from the %d read", len(got), len(data)+3)
	}
	c.Close()
	if _, err := c.ReadFrom(bytes.NewReader(data)); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrom after Close: %v, want ErrClosed", err)
	}
	close(ps.in)
}
