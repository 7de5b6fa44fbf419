package serial

import (
	"context"
	"errors"
	"io"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Connect serves one byte stream: what the client sends is written to the
// port, what the port sends is written to the client. The port is opened if
// needed. A client's half-close (no more input) keeps the output flowing; the
// stream ends when the client goes away, when close(), Reset or Close closes
// the port (cleanly), or when the port fails, e.g. an adapter unplugged (with
// an INTERNAL error naming the port).
func (s *Serial) Connect(ctx context.Context, conn sdk.Conn) error {
	d, err := s.device()
	if err != nil {
		return err
	}
	r, err := d.subscribe(ctx)
	switch {
	case errors.Is(err, errInUse):
		return kindErrorf(sdk.ErrBusy, "serial port %s is in use by another stream", s.cfg.URL)
	case errors.Is(err, errPortClosed):
		return kindErrorf(sdk.ErrUnavailable, "serial port %s was closed while connecting", s.cfg.URL)
	case err != nil:
		return err
	}
	defer d.unsubscribe(r)
	s.Logger().Debug("stream connected", "path", s.cfg.URL)

	// The client's input goes to the port in its own goroutine. It may
	// outlive this call while it waits for the client (the SDK gives no way
	// to interrupt a pending Read); it ends with the stream and never touches
	// the port after it is closed.
	input := make(chan error, 1)
	go func() { input <- d.copyIn(conn) }()

	for {
		select {
		case <-r.data:
			if err := writeAll(conn, r.take()); err != nil {
				return err
			}
		case err := <-input:
			switch {
			case err == nil: // the client half-closed; output keeps flowing
				input = nil
			case errors.Is(err, errPortClosed): // the port closed: reported below
				input = nil
			default:
				return err
			}
		case <-d.closing:
			// Deliver what the port said before it closed.
			if err := writeAll(conn, r.take()); err != nil {
				return err
			}
			if cause := d.failure(); cause != nil {
				return s.readError(cause)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// copyIn writes what the client sends to the port until the client
// half-closes (nil) or something fails.
func (d *device) copyIn(conn sdk.Conn) error {
	buf := make([]byte, readSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := d.write(buf[:n]); werr != nil {
				if errors.Is(werr, errPortClosed) || d.isClosed() {
					return errPortClosed
				}
				return kindErrorf(sdk.ErrIO, "serial port %s: write: %v", d.path, werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readError explains a failed read of the port.
func (s *Serial) readError(err error) error {
	if isPortClosed(err) {
		return kindErrorf(sdk.ErrIO, "serial port %s went away: the device hung up or was unplugged", s.cfg.URL)
	}
	return kindErrorf(sdk.ErrIO, "serial port %s went away: read: %v", s.cfg.URL, err)
}

func writeAll(conn sdk.Conn, chunks [][]byte) error {
	for _, c := range chunks {
		if _, err := conn.Write(c); err != nil {
			return err
		}
	}
	return nil
}
