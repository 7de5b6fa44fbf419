package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	// writeTimeout bounds a write to the console: when no one reads it (the
	// terminal's buffer is full), the board drops its output and carries on.
	writeTimeout = time.Second
	// minBackoff and maxBackoff bound the wait before reading the console
	// again while no client has it open.
	minBackoff = 10 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
)

// serveConsole runs the board's serial console on master, the master side of
// its pseudo-terminal: it prints the boot log, then answers what clients type
// on the slave side. It returns when master is closed, or when ctx ends while
// no client has the console open.
//
// While no client has the slave open, reads of master fail with EIO, so the
// board retries them with a growing backoff; what it writes meanwhile waits
// in the terminal's buffer for the next client.
func serveConsole(ctx context.Context, master *os.File, b *board, log hclog.Logger) {
	write := func(p []byte) {
		if len(p) == 0 {
			return
		}
		_ = master.SetWriteDeadline(time.Now().Add(writeTimeout))
		if n, err := master.Write(p); err != nil && !errors.Is(err, os.ErrClosed) {
			log.Warn("console output dropped: no one reads the console", "bytes", len(p)-n, "error", err)
		}
	}
	write(b.banner())
	buf := make([]byte, 4096)
	var backoff time.Duration
	for {
		n, err := master.Read(buf)
		if n > 0 {
			write(b.input(buf[:n]))
		}
		switch {
		case err == nil:
			backoff = 0
		case errors.Is(err, syscall.EIO):
			if backoff == 0 {
				log.Info("console closed by its client; waiting for the next one")
				write(b.hangup())
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		case errors.Is(err, os.ErrClosed):
			return
		default:
			log.Error("console read failed; the console stops", "error", err)
			return
		}
	}
}
