package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// callSocket is the connection to a plugin's call socket (protocol minor 6):
// unary calls as length-prefixed CallFrame messages, many in flight at once,
// matched to their answers by id. A Python plugin answers a call there with
// a fraction of the work of its gRPC server, and without the hop from
// grpcio's poller thread to its event loop.
type callSocket struct {
	conn net.Conn

	wmu  sync.Mutex // one frame at a time on the wire
	wbuf []byte

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *pluginv1.CallFrame
	broken  error // why the connection ended; set once
}

// dialCallSocket connects to the call socket at path, which only the
// plugin process pid may serve.
func dialCallSocket(path string, pid int) (*callSocket, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("call socket: %w", err)
	}
	peer, err := protocol.PeerPID(conn)
	if err == nil {
		err = protocol.ExpectPID("plugin this exporter started", func() int { return pid })(peer)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("call socket %s: %w: %w", path, protocol.ErrPeerRefused, err)
	}
	c := &callSocket{conn: conn, pending: map[uint64]chan *pluginv1.CallFrame{}}
	go c.read()
	return c, nil
}

// read delivers each answer to its caller until the connection ends; then
// every call still waiting fails.
func (c *callSocket) read() {
	r := bufio.NewReaderSize(c.conn, 64<<10)
	var buf []byte
	for {
		var f *pluginv1.CallFrame
		var err error
		f, buf, err = protocol.ReadCallFrame(r, buf)
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		ch := c.pending[f.GetId()]
		delete(c.pending, f.GetId())
		c.mu.Unlock()
		if ch != nil {
			ch <- f // buffered: the caller may have gone
		}
	}
}

// fail ends the connection with err and fails every call waiting on it.
func (c *callSocket) fail(err error) {
	_ = c.conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = err
	}
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

func (c *callSocket) close() { c.fail(errors.New("closed")) }

// usable reports whether the connection still serves calls: once it broke,
// the instance's calls take gRPC (a process that died fails them there too).
func (c *callSocket) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken == nil
}

func (c *callSocket) send(f *pluginv1.CallFrame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := protocol.AppendCallFrame(c.wbuf[:0], f)
	if err != nil {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	if cap(b) <= 64<<10 {
		c.wbuf = b // keep small buffers for the next call
	}
	if _, err := c.conn.Write(b); err != nil {
		c.fail(err)
		return c.lost()
	}
	return nil
}

// lost is the error of a call whose connection ended under it: UNAVAILABLE,
// which the instance explains by the process's exit when it was that.
func (c *callSocket) lost() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return status.Errorf(codes.Unavailable, "the driver's call socket closed: %v", c.broken)
}

// call sends req to the instance (or the child the driver made at the
// relative path instance) and waits for its answer or ctx's end; a call
// given up is cancelled in the plugin. A driver's error comes back as the
// status it answered, with driverErr set.
func (c *callSocket) call(ctx context.Context, instance string, req *pluginv1.CallRequest) (resp *pluginv1.CallResponse, driverErr bool, err error) {
	ch := make(chan *pluginv1.CallFrame, 1)
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return nil, false, c.lost()
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.send(&pluginv1.CallFrame{Id: id, Instance: instance, Request: req}); err != nil {
		c.forget(id)
		return nil, false, err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return nil, false, c.lost()
		}
		if code := codes.Code(f.GetCode()); code != codes.OK {
			return nil, true, status.Error(code, f.GetMessage())
		}
		if f.GetResponse() == nil {
			return nil, false, status.Errorf(codes.Internal, "the driver answered call %d with neither a result nor an error", id)
		}
		return f.GetResponse(), false, nil
	case <-ctx.Done():
		if c.forget(id) {
			_ = c.send(&pluginv1.CallFrame{Id: id, Cancel: true})
		}
		return nil, false, status.FromContextError(ctx.Err()).Err()
	}
}

// forget stops waiting for call id; it reports whether the call was still
// unanswered.
func (c *callSocket) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}
