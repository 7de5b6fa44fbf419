package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/drivers/network"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Console is the board's serial console: a byte stream to the console the
// power driver serves while the board is on.
var Console = sdk.Type{
	Name:        "qemu-console",
	Client:      "jumpstarter_driver_pyserial.client.PySerialClient",
	Description: "QEMU virtual board serial console",
	New:         sdk.Factory(NewConsole),
}

// ConsoleConfig configures the console.
type ConsoleConfig struct {
	StateDir string `json:"state_dir" doc:"the board's state directory, shared by its children (required)"`
}

// ConsoleDriver connects streams to the board's console.
type ConsoleDriver struct {
	sdk.Base
	path string
}

// Interface guards
var _ sdk.Driver = (*ConsoleDriver)(nil)

// NewConsole checks the config.
func NewConsole(cfg ConsoleConfig) (*ConsoleDriver, error) {
	if err := checkStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	return &ConsoleDriver{path: consoleSocket(cfg.StateDir)}, nil
}

// Exports lists the method upstream's PySerialClient streams through.
func (c *ConsoleDriver) Exports() []sdk.Method {
	return []sdk.Method{sdk.ExportStream("connect", c.Connect, "The board's serial console")}
}

// Connect relays the stream to the console while the board is on.
func (c *ConsoleDriver) Connect(ctx context.Context, conn sdk.Conn) error {
	if _, err := os.Stat(c.path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: qemu: the board is powered off: no console", sdk.ErrUnavailable)
	}
	n, err := network.NewUnix(network.UnixConfig{Path: c.path, ConnectTimeout: defaultDial})
	if err != nil {
		return err
	}
	return n.Connect(ctx, conn)
}

// hub serves qemu's serial console to any number of unix connections: each
// gets the recent output first, then what follows; what any of them writes
// goes to the board. A connection that does not keep up loses output, not
// the others.
type hub struct {
	ln      net.Listener
	path    string
	logger  hclog.Logger
	backlog int

	mu     sync.Mutex
	recent []byte
	subs   map[*sub]struct{}
	in     io.Writer // qemu's stdin
	closed bool

	inMu sync.Mutex // one writer at a time to the board
	wg   sync.WaitGroup
}

// sub is one console connection and the output it has yet to receive.
type sub struct {
	c       net.Conn
	mu      sync.Mutex
	pending []byte
	closed  bool
	wake    chan struct{} // has a value when pending grew or the sub closed
}

// subLimit is how much output a console connection may lag behind.
const subLimit = 256 << 10

func newSub(c net.Conn) *sub { return &sub{c: c, wake: make(chan struct{}, 1)} }

// push queues b, or reports false when the connection lags too far behind.
func (s *sub) push(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending)+len(b) > subLimit {
		return false
	}
	s.pending = append(s.pending, b...)
	s.signal()
	return true
}

// end tells the sender to stop once pending is written.
func (s *sub) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.signal()
}

func (s *sub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// takeNow returns the pending output without waiting.
func (s *sub) takeNow() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	s.pending = nil
	return b
}

// Output bursts: a write less than burstGap after the previous one, of less
// than burstGather bytes, waits burstWait for more.
const (
	burstGap    = 2 * time.Millisecond
	burstGather = 4096
	burstWait   = time.Millisecond
)

// take returns the pending output, waiting for some; ok is false at the end.
func (s *sub) take() (b []byte, ok bool) {
	for {
		s.mu.Lock()
		b, s.pending = s.pending, nil
		closed := s.closed
		s.mu.Unlock()
		if len(b) > 0 {
			return b, true
		}
		if closed {
			return nil, false
		}
		<-s.wake
	}
}

// listenConsole serves the console socket at path (replacing a stale socket
// a crashed process left, but nothing else).
func listenConsole(path string, backlog int, logger hclog.Logger) (*hub, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: qemu: %s exists and is not a socket; it is not this board's to replace", sdk.ErrUnavailable, path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: qemu: console socket: %w", sdk.ErrUnavailable, err)
	}
	return &hub{ln: ln, path: path, logger: logger, backlog: backlog, subs: map[*sub]struct{}{}}, nil
}

// attach starts serving: out is qemu's serial output, in its input.
func (h *hub) attach(in io.Writer, out io.Reader) {
	h.mu.Lock()
	h.in = in
	h.mu.Unlock()
	h.wg.Add(2)
	go h.pump(out)
	go h.accept()
}

func (h *hub) pump(out io.Reader) {
	defer h.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			h.deliver(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (h *hub) deliver(b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.backlog > 0 {
		// Keep up to twice the backlog and trim to it now and then, so a
		// board printing a byte at a time does not move the backlog each time.
		h.recent = append(h.recent, b...)
		if len(h.recent) > 2*h.backlog {
			h.recent = append(h.recent[:0], h.recent[len(h.recent)-h.backlog:]...)
		}
	}
	for s := range h.subs {
		if !s.push(b) {
			h.logger.Warn("a console stream does not keep up: output dropped for it", "bytes", len(b))
		}
	}
}

func (h *hub) accept() {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		s := newSub(c)
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.Close()
			return
		}
		s.push(h.recent[max(0, len(h.recent)-h.backlog):])
		h.subs[s] = struct{}{}
		h.mu.Unlock()
		h.wg.Add(2)
		go h.send(s)
		go h.receive(s)
	}
}

// send writes the board's output to one connection.
func (h *hub) send(s *sub) {
	defer h.wg.Done()
	defer s.c.Close()
	var last time.Time
	for {
		b, ok := s.take()
		if !ok {
			return
		}
		// A board printing a burst (a boot log) writes a byte at a time:
		// within a burst, gather a millisecond's bytes into one write. A
		// keystroke's echo, with nothing written just before, goes at once.
		if len(b) < burstGather && time.Since(last) < burstGap {
			time.Sleep(burstWait)
			b = append(b, s.takeNow()...)
		}
		if _, err := s.c.Write(b); err != nil {
			h.drop(s)
			return
		}
		last = time.Now()
	}
}

// receive writes what one connection sends to the board.
func (h *hub) receive(s *sub) {
	defer h.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := s.c.Read(buf)
		if n > 0 {
			h.mu.Lock()
			in := h.in
			h.mu.Unlock()
			h.inMu.Lock()
			_, werr := in.Write(buf[:n])
			h.inMu.Unlock()
			if werr != nil {
				err = werr
			}
		}
		if errors.Is(err, io.EOF) {
			return // the client is done sending; it still receives
		}
		if err != nil {
			h.drop(s)
			return
		}
	}
}

// drop forgets a connection; its sender closes it.
func (h *hub) drop(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		s.end()
	}
}

// close stops serving and ends every connection. qemu's pipes are closed by
// its exit, which ends the pump.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		s.end()
		s.c.Close()
	}
	h.mu.Unlock()
	h.ln.Close()
	os.Remove(h.path)
	h.wg.Wait()
}
