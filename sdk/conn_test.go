package sdk

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
)

// pipeStream is a frameStream whose Recv serves frames from a channel.
type pipeStream struct {
	in   chan *pluginv1.Frame
	sent []*pluginv1.Frame
}

func (p *pipeStream) Send(f *pluginv1.Frame) error { p.sent = append(p.sent, f); return nil }
func (p *pipeStream) Recv() (*pluginv1.Frame, error) {
	f, ok := <-p.in
	if !ok {
		return nil, io.EOF
	}
	return f, nil
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
