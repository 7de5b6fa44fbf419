package main

import (
	"errors"
	"io"
	"sync"
	"time"
)

// errDetached ends a console session: the user typed the escape sequence.
var errDetached = errors.New("detached")

// stdioConn is the local end of `jw pipe` and `jw console`: it reads from in (stdin) and writes to
// out (stdout), as the connection client.Stream.Splice splices with a byte stream.
//
// A goroutine reads in and hands over one chunk at a time. Close and CloseWrite make Read return
// io.EOF at once, even while that goroutine is blocked reading a terminal: so jw exits when the
// device side ends. The goroutine then stays blocked until its read returns (or the process
// exits); that is why stdioConn is for the CLI only.
type stdioConn struct {
	out io.Writer
	esc *escapeDetector // nil: no escape sequence (a plain pipe)

	chunks  chan []byte // from the reading goroutine; closed after inErr is set
	inErr   error
	stop    chan struct{}
	stopped sync.Once

	pending  []byte
	detached bool

	moved func() // when not nil, called whenever data moves either way
}

// newStdioConn starts reading in. esc, when not nil, watches the input for the escape sequence:
// Read then returns errDetached after the bytes that preceded it.
func newStdioConn(in io.Reader, out io.Writer, esc *escapeDetector) *stdioConn {
	c := &stdioConn{out: out, esc: esc, chunks: make(chan []byte), stop: make(chan struct{})}
	go c.pump(in)
	return c
}

func (c *stdioConn) pump(in io.Reader) {
	for {
		buf := make([]byte, 32<<10)
		n, err := in.Read(buf)
		if n > 0 {
			select {
			case c.chunks <- buf[:n]:
			case <-c.stop:
				return
			}
		}
		if err != nil {
			c.inErr = err
			close(c.chunks)
			return
		}
	}
}

// Read returns input: io.EOF at the input's end or once the connection is closed, errDetached
// after the escape sequence.
func (c *stdioConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.detached {
			return 0, errDetached
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if c.moved != nil {
		c.moved()
	}
	return n, nil
}

// next waits for the next chunk of input (or for held escape bytes to expire) and sets pending.
func (c *stdioConn) next() error {
	var expire <-chan time.Time
	if c.esc != nil {
		if dl := c.esc.deadline(); !dl.IsZero() {
			t := time.NewTimer(time.Until(dl))
			defer t.Stop()
			expire = t.C
		}
	}
	select {
	case b, ok := <-c.chunks:
		if !ok {
			if c.esc != nil {
				if c.pending = c.esc.release(); len(c.pending) > 0 {
					return nil
				}
			}
			return c.inErr // io.EOF at the end of the input
		}
		if c.esc == nil {
			c.pending = b
			return nil
		}
		c.pending, c.detached = c.esc.feed(b, time.Now())
	case now := <-expire:
		c.pending = c.esc.expire(now)
	case <-c.stop:
		return io.EOF
	}
	return nil
}

// Write writes to out.
func (c *stdioConn) Write(p []byte) (int, error) {
	if c.moved != nil && len(p) > 0 {
		c.moved()
	}
	return c.out.Write(p)
}

// CloseWrite is called when the device will send nothing more: jw stops reading its input, so
// that it exits rather than wait for input nobody needs.
func (c *stdioConn) CloseWrite() error { return c.Close() }

// Close stops reading the input.
func (c *stdioConn) Close() error {
	c.stopped.Do(func() { close(c.stop) })
	return nil
}
