package sdk

import (
	"context"
	"errors"
	"io"
	"sync"

	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
	"google.golang.org/grpc/codes"
)

// maxFrame is the largest payload one frame carries; larger writes are split.
const maxFrame = 1 << 20

// ErrClosed is returned by a [Conn]'s Write after CloseWrite or Close.
var ErrClosed = errors.New("stream closed")

// frameStream is the half of a gRPC byte stream a Conn needs.
type frameStream interface {
	Send(*pluginv1.Frame) error
	Recv() (*pluginv1.Frame, error)
}

// streamConn is a Conn over one plugin-protocol Stream. Read is owned by the
// driver's reading goroutine; Write and CloseWrite share a lock because gRPC
// allows one sender at a time.
type streamConn struct {
	stream frameStream
	cancel context.CancelFunc

	rbuf []byte
	rerr error

	wmu     sync.Mutex
	wclosed bool
}

func (c *streamConn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		f, err := c.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			c.rerr = err
			continue
		}
		switch f.Kind {
		case pluginv1.FrameKind_FRAME_KIND_DATA:
			c.rbuf = f.Payload
		case pluginv1.FrameKind_FRAME_KIND_GOAWAY:
			c.rerr = io.EOF
		case pluginv1.FrameKind_FRAME_KIND_RST_STREAM:
			c.rerr = ErrClosed
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return 0, ErrClosed
	}
	n := 0
	for n < len(p) {
		end := min(len(p), n+maxFrame)
		if err := c.stream.Send(&pluginv1.Frame{Payload: p[n:end]}); err != nil {
			return n, err
		}
		n = end
	}
	return n, nil
}

func (c *streamConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return nil
	}
	c.wclosed = true
	return c.stream.Send(&pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY})
}

func (c *streamConn) Close() error {
	c.wmu.Lock()
	c.wclosed = true
	c.wmu.Unlock()
	c.cancel()
	return nil
}

// serveStream runs a byte-stream method on one stream. When the method
// returns, the client is told no more data follows.
func serveStream(ctx context.Context, m *Method, log logFunc, stream frameStream) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &streamConn{stream: stream, cancel: cancel}
	defer func() {
		if err == nil {
			err = c.CloseWrite()
		}
	}()
	defer recoverCall(m.name, log, &err)
	if err := m.stream(ctx, c); err != nil && !errors.Is(err, ErrClosed) {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return toStatus(err)
	}
	if ctx.Err() != nil && c.rerr == nil {
		return statusf(codes.Canceled, "%s: stream cancelled", m.name)
	}
	return nil
}
