// Package sim simulates an Acme network relay board: a TCP server speaking
// the board's line protocol, for tests and demos without hardware.
//
//	SET <ch> ON|OFF   -> OK
//	GET <ch>          -> ON | OFF
//	MEAS <ch>         -> V=5.01 I=0.42 (V=0.00 I=0.00 while the relay is off)
//
// Anything else, or a channel outside 1-8, is answered "ERR <reason>".
package sim

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Channels is how many relays the board has.
const Channels = 8

// Option configures a simulated board.
type Option func(*Board)

// OnCommand calls fn with every command line the board receives, before it
// answers; the answer waits for fn to return.
func OnCommand(fn func(cmd string)) Option {
	return func(b *Board) { b.onCommand = fn }
}

// Board is a simulated relay board serving on a TCP address.
type Board struct {
	ln        net.Listener
	onCommand func(string)
	wg        sync.WaitGroup

	mu       sync.Mutex
	relays   [Channels + 1]bool
	volts    float64
	amps     float64
	fault    string
	commands []string
	conns    map[net.Conn]struct{}
	closed   bool
}

// Listen starts a board on addr ("127.0.0.1:0" picks a free port). Close
// stops it.
func Listen(addr string, opts ...Option) (*Board, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	b := &Board{ln: ln, volts: 5.01, amps: 0.42, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(b)
	}
	b.wg.Go(b.accept)
	return b, nil
}

// Addr returns the address the board serves on ("127.0.0.1:40123").
func (b *Board) Addr() string { return b.ln.Addr().String() }

// Port returns the TCP port the board serves on.
func (b *Board) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// Commands returns every command line received so far, in order.
func (b *Board) Commands() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.commands...)
}

// Relay reports whether the relay of channel ch is on.
func (b *Board) Relay(ch int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ch >= 1 && ch <= Channels && b.relays[ch]
}

// SetLoad sets what MEAS reports for a channel whose relay is on.
func (b *Board) SetLoad(volts, amps float64) {
	b.mu.Lock()
	b.volts, b.amps = volts, amps
	b.mu.Unlock()
}

// Fail makes the board answer every command "ERR <reason>" until Fail("").
func (b *Board) Fail(reason string) {
	b.mu.Lock()
	b.fault = reason
	b.mu.Unlock()
}

// Disconnect closes every open connection, as a board rebooting does; the
// board keeps listening.
func (b *Board) Disconnect() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		_ = c.Close()
	}
}

// Close stops the board and waits for its connections to end.
func (b *Board) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	err := b.ln.Close()
	b.Disconnect()
	b.wg.Wait()
	return err
}

func (b *Board) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = c.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Go(func() { b.serve(c) })
	}
}

// serve answers the commands of one connection, one line each.
func (b *Board) serve(c net.Conn) {
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		_ = c.Close()
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if b.onCommand != nil {
			b.onCommand(line)
		}
		if _, err := fmt.Fprintf(c, "%s\n", b.answer(line)); err != nil {
			return
		}
	}
}

// answer runs one command and returns the answer line.
func (b *Board) answer(line string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commands = append(b.commands, line)
	if b.fault != "" {
		return "ERR " + b.fault
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return fmt.Sprintf("ERR unknown command %q", line)
	}
	ch, err := channel(f[1])
	if err != nil {
		return "ERR " + err.Error()
	}
	switch {
	case f[0] == "SET" && len(f) == 3 && (f[2] == "ON" || f[2] == "OFF"):
		b.relays[ch] = f[2] == "ON"
		return "OK"
	case f[0] == "GET" && len(f) == 2:
		if b.relays[ch] {
			return "ON"
		}
		return "OFF"
	case f[0] == "MEAS" && len(f) == 2:
		if !b.relays[ch] {
			return "V=0.00 I=0.00"
		}
		return fmt.Sprintf("V=%.2f I=%.2f", b.volts, b.amps)
	}
	return fmt.Sprintf("ERR unknown command %q", line)
}

func channel(s string) (int, error) {
	ch, err := strconv.Atoi(s)
	if err != nil || ch < 1 || ch > Channels {
		return 0, errors.New("no channel " + s)
	}
	return ch, nil
}
