package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// board speaks the Acme relay board's line protocol over one TCP connection:
// one command line out, one answer line back. The connection is dialled on
// first use and again after any failure; exchanges are serialised, because
// the board answers one command at a time.
type board struct {
	addr    string
	timeout time.Duration

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// replyError is an "ERR ..." answer: the board understood the command and
// refused it.
type replyError struct {
	addr, cmd, reply string
}

func (e *replyError) Error() string {
	return fmt.Sprintf("acme board at %s: %s: %s", e.addr, e.cmd, e.reply)
}

// Unwrap makes an ERR answer an sdk.ErrIO: the client sees INTERNAL.
func (e *replyError) Unwrap() error { return sdk.ErrIO }

// exchange sends cmd and returns the board's answer without its newline.
// An "ERR ..." answer is a *replyError (sdk.ErrIO); a board that cannot be
// reached or stops answering is an error wrapping sdk.ErrUnavailable that
// names its address; a cancelled ctx returns ctx's error.
func (b *board) exchange(ctx context.Context, cmd string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	reused := b.conn != nil
	reply, err := b.try(ctx, cmd)
	var re *replyError
	if err != nil && reused && ctx.Err() == nil && !errors.As(err, &re) {
		// The board may have dropped an idle connection (it reboots, or
		// times connections out): dial once more. Every command of the
		// protocol is idempotent, so sending it twice is safe.
		reply, err = b.try(ctx, cmd)
	}
	return reply, err
}

// try runs one exchange on the current connection, dialling first if there
// is none. Any failure drops the connection.
func (b *board) try(ctx context.Context, cmd string) (string, error) {
	if b.conn == nil {
		d := net.Dialer{Timeout: b.timeout}
		conn, err := d.DialContext(ctx, "tcp", b.addr)
		if err != nil {
			return "", b.lost(ctx, err)
		}
		b.conn, b.r = conn, bufio.NewReader(conn)
	}
	conn := b.conn
	deadline := time.Now().Add(b.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	// A cancelled call unblocks at once instead of waiting for the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		b.drop()
		return "", b.lost(ctx, fmt.Errorf("%s: %w", cmd, err))
	}
	line, err := b.r.ReadString('\n')
	if err != nil {
		b.drop()
		if errors.Is(err, io.EOF) {
			err = errors.New("the board closed the connection")
		}
		return "", b.lost(ctx, fmt.Errorf("%s: %w", cmd, err))
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "ERR") {
		return "", &replyError{addr: b.addr, cmd: cmd, reply: line}
	}
	return line, nil
}

// lost is the error for a board that could not be reached or stopped
// answering: the caller's own cancellation when that is what happened, else
// UNAVAILABLE naming the board.
func (b *board) lost(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("acme board at %s: %w", b.addr, context.Cause(ctx))
	}
	return fmt.Errorf("acme board at %s is %w: %w", b.addr, sdk.ErrUnavailable, err)
}

// unexpected is the error for an answer the protocol does not allow.
func (b *board) unexpected(cmd, reply string) error {
	return fmt.Errorf("acme board at %s: %s: unexpected answer %q: %w", b.addr, cmd, reply, sdk.ErrIO)
}

// drop closes the connection; the next exchange dials again.
func (b *board) drop() {
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn, b.r = nil, nil
	}
}

// close closes the connection, waiting for an exchange in flight.
func (b *board) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop()
}
