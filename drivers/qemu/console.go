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

// sub is one console connection.
type sub struct {
	c   net.Conn
	out chan []byte
}

// subQueue is how many chunks a console connection may lag behind.
const subQueue = 256

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
		h.recent = append(h.recent, b...)
		if over := len(h.recent) - h.backlog; over > 0 {
			h.recent = append(h.recent[:0], h.recent[over:]...)
		}
	}
	for s := range h.subs {
		select {
		case s.out <- append([]byte(nil), b...):
		default:
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
		s := &sub{c: c, out: make(chan []byte, subQueue)}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.Close()
			return
		}
		if len(h.recent) > 0 {
			s.out <- append([]byte(nil), h.recent...)
		}
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
	for b := range s.out {
		if _, err := s.c.Write(b); err != nil {
			h.drop(s)
			for range s.out { // until drop's close
			}
			return
		}
	}
	s.c.Close()
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
		close(s.out)
	}
}

// close stops serving and ends every connection. qemu's pipes are closed by
// its exit, which ends the pump.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.out)
		s.c.Close()
	}
	h.mu.Unlock()
	h.ln.Close()
	os.Remove(h.path)
	h.wg.Wait()
}
