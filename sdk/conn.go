package sdk

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
	"google.golang.org/grpc/codes"
)

// maxFrame is the largest payload one frame carries; larger writes are split.
const maxFrame = 1 << 20

// ErrClosed is returned by a [Conn]'s Read after Close, and by Write after
// CloseWrite or Close.
var ErrClosed = errors.New("stream closed")

// frameStream is the half of a gRPC byte stream a Conn needs.
type frameStream interface {
	Send(*pluginv1.Frame) error
	Recv() (*pluginv1.Frame, error)
}

// streamConn is a Conn over one plugin-protocol Stream. One goroutine
// receives frames and hands them to Read one at a time (so the client is
// held back by flow control while the driver does not read); Write and
// CloseWrite share a lock because gRPC allows one sender at a time.
type streamConn struct {
	stream frameStream
	ctx    context.Context
	cancel context.CancelFunc

	frames  chan *pluginv1.Frame // closed when receiving ends
	recvErr error                // why receiving ended; read after frames is closed

	rbuf []byte // owned by the reading goroutine
	rerr error  // likewise

	closed  atomic.Bool
	wmu     sync.Mutex
	wclosed bool
}

func newStreamConn(ctx context.Context, stream frameStream) *streamConn {
	c := &streamConn{stream: stream, frames: make(chan *pluginv1.Frame)}
	c.ctx, c.cancel = context.WithCancel(ctx)
	go c.receive()
	return c
}

func (c *streamConn) receive() {
	defer close(c.frames)
	for {
		f, err := c.stream.Recv()
		if err != nil {
			c.recvErr = err
			return
		}
		select {
		case c.frames <- f:
		case <-c.ctx.Done():
			c.recvErr = ErrClosed
			return
		}
	}
}

func (c *streamConn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		select {
		case f, ok := <-c.frames:
			switch {
			case !ok && errors.Is(c.recvErr, io.EOF):
				c.rerr = io.EOF
			case !ok:
				c.rerr = c.recvErr
			case f.Kind == pluginv1.FrameKind_FRAME_KIND_DATA:
				c.rbuf = f.Payload
			case f.Kind == pluginv1.FrameKind_FRAME_KIND_GOAWAY:
				c.rerr = io.EOF
			case f.Kind == pluginv1.FrameKind_FRAME_KIND_RST_STREAM:
				c.rerr = ErrClosed
			}
		case <-c.ctx.Done():
			c.rerr = ErrClosed
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// Write sends p; an empty p is sent as one empty frame (a zero-length
// datagram, say).
func (c *streamConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return 0, ErrClosed
	}
	n := 0
	for first := true; first || n < len(p); first = false {
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

// Close ends the stream in both directions at once: a Read in progress
// returns ErrClosed, later Writes fail.
func (c *streamConn) Close() error {
	c.closed.Store(true)
	c.cancel()
	return nil
}

// serveStream runs a byte-stream method on one stream. When the method
// returns, the client is told no more data follows.
func serveStream(ctx context.Context, m *Method, log logFunc, stream frameStream) (err error) {
	c := newStreamConn(ctx, stream)
	defer c.cancel()
	defer func() {
		if err == nil && ctx.Err() == nil {
			err = c.CloseWrite()
		}
	}()
	defer recoverCall(m.name, log, &err)
	err = m.stream(c.ctx, c)
	switch {
	case ctx.Err() != nil:
		return statusf(codes.Canceled, "%s: the client went away", m.name)
	case err == nil, errors.Is(err, ErrClosed), errors.Is(err, io.EOF):
		return nil
	}
	return toStatus(err)
}
