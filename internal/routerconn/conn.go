// Package routerconn carries a whole connection (bytes both ways) over one
// jumpstarter.v1 RouterService.Stream, as a Jumpstarter router pairs an
// exporter and a client: DATA frames carry the bytes, GOAWAY ends a
// direction, PING carries nothing. The exporter serves a client's HTTP/2
// gRPC connection over such a stream; a client (or a test) dials one.
package routerconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc"
)

// Stream is the part of a RouterService.Stream call a Conn needs: a
// client's stream (grpc.ClientStream) or, on the server side, a
// grpc.ServerStream with CloseSend a no-op.
type Stream interface {
	SendMsg(m any) error
	RecvMsg(m any) error
}

// Conn is a net.Conn over one router stream. Read and Write may be called
// from one goroutine each; Close from any. Deadlines are accepted and
// ignored: the stream's context bounds it.
type Conn struct {
	stream Stream
	done   func() // ends the stream (cancels its call, closes its connection)
	local  net.Addr
	remote net.Addr

	rmu sync.Mutex // one reader
	cur *protocol.Frame
	eof bool

	wmu       sync.Mutex // one writer at a time
	wclosed   bool
	closeOnce sync.Once
}

// Addr is a router endpoint as a net.Addr.
type Addr string

// Network is "router".
func (Addr) Network() string { return "router" }

func (a Addr) String() string { return string(a) }

// New wraps stream as a Conn. done, called once at Close, ends the stream
// and whatever carries it; remote names the other end in logs.
func New(stream Stream, done func(), local, remote net.Addr) *Conn {
	if done == nil {
		done = func() {}
	}
	return &Conn{stream: stream, done: done, local: local, remote: remote}
}

// Read reads the payload of DATA frames. A GOAWAY or the stream's end is
// io.EOF; PING and unknown frames are skipped; RST_STREAM is an error.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.cur != nil {
			n, _ := c.cur.Read(p)
			if c.cur.Len() == 0 {
				c.cur.Free()
				c.cur = nil
			}
			if n > 0 {
				return n, nil
			}
		}
		if c.eof {
			return 0, io.EOF
		}
		f := new(protocol.Frame)
		if err := c.stream.RecvMsg(f); err != nil {
			c.eof = true
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("router stream: %w", err)
		}
		switch f.Kind() {
		case protocol.KindData:
			c.cur = f
		case protocol.KindGoaway:
			f.Free()
			c.eof = true
		case protocol.KindRST:
			f.Free()
			c.eof = true
			return 0, errors.New("router stream: reset by the other end")
		default:
			f.Free()
		}
	}
}

// Write sends p as one DATA frame.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return 0, net.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.stream.SendMsg(protocol.Data(p)); err != nil {
		return 0, fmt.Errorf("router stream: %w", err)
	}
	return len(p), nil
}

// CloseWrite sends GOAWAY: nothing more comes from this end.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return nil
	}
	c.wclosed = true
	err := c.stream.SendMsg(protocol.Control(protocol.KindGoaway))
	if cs, ok := c.stream.(grpc.ClientStream); ok {
		_ = cs.CloseSend()
	}
	return err
}

// Close says GOAWAY and ends the stream. It is safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.CloseWrite()
		c.done()
	})
	return nil
}

// LocalAddr names this end.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr names the router.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline is accepted and ignored.
func (c *Conn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is accepted and ignored.
func (c *Conn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is accepted and ignored.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// Listener hands Conns to a gRPC server: Put one in, the server Accepts it.
type Listener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// NewListener returns a Listener whose Addr is addr.
func NewListener(addr net.Addr) *Listener {
	return &Listener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Put hands c to the server; it closes c and fails when the listener is
// closed or ctx ends first.
func (l *Listener) Put(ctx context.Context, c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		c.Close()
		return net.ErrClosed
	case <-ctx.Done():
		c.Close()
		return ctx.Err()
	}
}

// Accept waits for the next Conn.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept. Conns already accepted are the server's to close.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the address given to NewListener.
func (l *Listener) Addr() net.Addr { return l.addr }
