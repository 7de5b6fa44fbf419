package sdk

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc/codes"
)

// maxFrame is the largest payload one frame carries; larger writes are split.
const maxFrame = 1 << 20

// ErrClosed is returned by a [Conn]'s Read after Close, and by Write after
// CloseWrite or Close.
var ErrClosed = errors.New("stream closed")

// frameStream is the half of a gRPC byte stream a Conn needs. Its codec is
// protocol.Codec, which sends and receives *protocol.Frame.
type frameStream interface {
	SendMsg(m any) error
	RecvMsg(m any) error
}

// streamConn is a Conn over one plugin-protocol Stream. One goroutine
// receives frames and hands them to Read one at a time (so the client is
// held back by flow control while the driver does not read); Write and
// CloseWrite share a lock because gRPC allows one sender at a time.
//
// Besides Conn it is an io.WriterTo and an io.ReaderFrom, so io.Copy
// between it and a connection moves each frame's bytes straight between the
// connection and gRPC's buffers.
type streamConn struct {
	stream frameStream
	ctx    context.Context
	cancel context.CancelFunc

	frames  chan *protocol.Frame // closed when receiving ends
	recvErr error                // why receiving ended; read after frames is closed

	cur  *protocol.Frame // the frame Read is handing out; owned by the reading goroutine
	rerr error           // likewise

	closed  atomic.Bool
	wmu     sync.Mutex
	wclosed bool

	// open tells the exporter the stream is open (gRPC headers), once,
	// before the first frame in either direction: see serveStream.
	open     func() error
	openOnce sync.Once
	openErr  error

	// local, when set, is the file the client's data comes from (a local
	// file the host handed over, see LocalFile): reads come from it, and
	// the frames the client sends (only its half-close) carry nothing.
	local *os.File
}

var (
	_ io.WriterTo   = (*streamConn)(nil)
	_ io.ReaderFrom = (*streamConn)(nil)
)

func newStreamConn(ctx context.Context, stream frameStream) *streamConn {
	return newOpeningConn(ctx, stream, nil)
}

// newOpeningConn is newStreamConn whose open runs before the Conn first
// reads or writes.
func newOpeningConn(ctx context.Context, stream frameStream, open func() error) *streamConn {
	c := &streamConn{stream: stream, frames: make(chan *protocol.Frame), open: open}
	c.ctx, c.cancel = context.WithCancel(ctx)
	go c.receive()
	return c
}

func (c *streamConn) receive() {
	defer close(c.frames)
	for {
		f := new(protocol.Frame)
		if err := c.stream.RecvMsg(f); err != nil {
			c.recvErr = err
			return
		}
		select {
		case c.frames <- f:
		case <-c.ctx.Done():
			f.Free()
			c.recvErr = ErrClosed
			return
		}
	}
}

// next makes c.cur a frame with unread data, or returns why there is none:
// io.EOF after the client's GOAWAY or half-close, ErrClosed after Close or a
// reset, or how the stream failed.
func (c *streamConn) next() error {
	if err := c.opened(); err != nil {
		return err
	}
	for c.cur == nil || c.cur.Len() == 0 {
		if c.cur != nil {
			c.cur.Free()
			c.cur = nil
		}
		if c.rerr != nil {
			return c.rerr
		}
		select {
		case f, ok := <-c.frames:
			switch {
			case !ok && errors.Is(c.recvErr, io.EOF):
				c.rerr = io.EOF
			case !ok:
				c.rerr = c.recvErr
			case f.Kind() == protocol.KindData:
				c.cur = f
			case f.Kind() == protocol.KindGoaway:
				f.Free()
				c.rerr = io.EOF
			case f.Kind() == protocol.KindRST:
				f.Free()
				c.rerr = ErrClosed
			default:
				f.Free() // PING and kinds this SDK does not know carry nothing
			}
		case <-c.ctx.Done():
			c.rerr = ErrClosed
		}
	}
	return nil
}

func (c *streamConn) Read(p []byte) (int, error) {
	if c.local != nil {
		return c.readLocal(p)
	}
	if err := c.next(); err != nil {
		return 0, err
	}
	return c.cur.Read(p)
}

// readLocal reads the local file that carries the client's data; the
// stream's end (Close, the client gone) stops it as it stops frames.
func (c *streamConn) readLocal(p []byte) (int, error) {
	if err := c.opened(); err != nil {
		return 0, err
	}
	if c.closed.Load() || c.ctx.Err() != nil {
		return 0, ErrClosed
	}
	return c.local.Read(p)
}

// WriteTo writes the client's data to w until the client half-closes (and
// returns nil then) or the stream or w fails.
func (c *streamConn) WriteTo(w io.Writer) (int64, error) {
	if c.local != nil {
		return io.Copy(w, struct{ io.Reader }{readerFunc(c.readLocal)})
	}
	var total int64
	for {
		if err := c.next(); err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
		n, err := c.cur.WriteTo(w)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// Write sends p; an empty p is sent as one empty frame (a zero-length
// datagram, say).
func (c *streamConn) Write(p []byte) (int, error) {
	n := 0
	for first := true; first || n < len(p); first = false {
		end := min(len(p), n+maxFrame)
		if err := c.send(protocol.Data(p[n:end])); err != nil {
			return n, err
		}
		n = end
	}
	return n, nil
}

// ReadFrom sends what it reads from r, each read as one frame, until r's
// EOF (and returns nil then; it does not half-close) or r or the stream
// fails.
func (c *streamConn) ReadFrom(r io.Reader) (int64, error) {
	fr := protocol.NewFrameReader(r)
	var total int64
	for {
		if c.closed.Load() {
			return total, ErrClosed
		}
		f, err := fr.Next()
		if f != nil {
			n := f.Len()
			if serr := c.send(f); serr != nil {
				return total, serr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// opened runs open once; every caller waits until it has, so that the
// headers never race a frame.
func (c *streamConn) opened() error {
	c.openOnce.Do(func() {
		if c.open != nil {
			c.openErr = c.open()
		}
	})
	return c.openErr
}

// send sends f, which it consumes.
func (c *streamConn) send(f *protocol.Frame) error {
	defer f.Free()
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.opened(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return ErrClosed
	}
	return c.stream.SendMsg(f)
}

func (c *streamConn) CloseWrite() error {
	if err := c.opened(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return nil
	}
	c.wclosed = true
	return c.stream.SendMsg(protocol.Control(protocol.KindGoaway))
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
//
// The stream is open (open sends gRPC headers, which the exporter waits for
// before it tells the client) when the method first reads or writes, not
// when it starts: by then it has done what it does first (subscribed to a
// serial port, dialled a target), so a byte the device sends after the
// client saw the stream open reaches this stream, and a method that fails
// before any I/O fails the client's open with its error.
func serveStream(ctx context.Context, m *Method, log logFunc, stream frameStream, open func() error, local *os.File) (err error) {
	c := newOpeningConn(ctx, stream, open)
	c.local = local
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

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// LocalFile returns the file a byte stream's client data comes from when
// the client runs on the exporter's machine and handed its file over
// instead of sending its bytes (jw flash does, for an image file), or nil.
// The file is opened for reading only, at offset 0; its bytes are what
// Reading c yields, so a driver that reads the file must not also Read c.
// It stays open while the method runs. Use it to copy the data in the
// kernel (io.Copy from it into an *os.File uses copy_file_range).
func LocalFile(c Conn) *os.File {
	if sc, ok := c.(*streamConn); ok {
		return sc.local
	}
	return nil
}
