package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
)

// closeWriter is a connection with a half-close, as *net.TCPConn and *net.UnixConn have.
type closeWriter interface {
	CloseWrite() error
}

// Forward opens a byte stream to method of the driver with the given uuid and splices it with
// conn (see [Stream.Splice]). It closes conn when it returns; when the stream cannot be opened it
// closes conn and returns why.
func (c *Client) Forward(ctx context.Context, uuid, method string, conn io.ReadWriteCloser) error {
	s, err := c.Stream(ctx, uuid, method)
	if err != nil {
		_ = conn.Close()
		return err
	}
	return s.Splice(conn)
}

// Splice copies conn's data to the stream and the stream's data to conn, one goroutine per
// direction, propagating half-closes both ways, and closes both when done:
//
//   - When conn's Read returns io.EOF, the stream is half-closed ([Stream.CloseWrite]) and data
//     from the driver still flows to conn.
//   - When the driver's data ends (GOAWAY), conn's CloseWrite is called if it has one (as
//     *net.TCPConn and *net.UnixConn do) and data from conn still flows to the driver.
//   - When the exporter ends the stream altogether, nothing more can reach the driver: conn is
//     closed, which must unblock its Read (true of net.Conn).
//
// Splice returns when both directions are done and the exporter has ended the RPC (so that
// nothing sent is lost in flight). It returns nil when the stream ended normally,
// the stream's error when it did not (e.g. the driver died), or the error conn's Read or Write
// returned (after which the stream is cut). Cancelling the stream's context ends the splice.
func (s *Stream) Splice(conn io.ReadWriteCloser) error {
	defer s.Close()
	var (
		connClosed atomic.Bool
		closeOnce  sync.Once
	)
	closeConn := func() {
		closeOnce.Do(func() {
			connClosed.Store(true)
			_ = conn.Close()
		})
	}
	defer closeConn()
	// A cancelled or closed stream unblocks conn too (a Write to a peer that does not read).
	stop := context.AfterFunc(s.ctx, closeConn)
	defer stop()

	upDone := make(chan error, 1)
	go func() { upDone <- s.upstream(conn, &connClosed) }()

	var upErr error
	downErr := s.downstream(conn, &connClosed)
	if downErr == nil {
		if cw, ok := conn.(closeWriter); ok {
			_ = cw.CloseWrite() // a peer already gone shows on its side of the copy
		}
		select {
		case upErr = <-upDone:
			if upErr == nil {
				// Both halves are closed: let the exporter end the RPC, since cancelling it
				// now could drop data still on its way to the driver.
				<-s.Done()
			}
		case <-s.Done():
			closeConn()
			upErr = <-upDone
		}
	} else {
		closeConn()
		_ = s.Close()
		upErr = <-upDone
	}

	switch {
	case downErr != nil && !errors.Is(downErr, ErrStreamClosed):
		return downErr
	case upErr != nil:
		return upErr
	}
	if err := s.Err(); err != nil && !errors.Is(err, ErrStreamClosed) {
		return err // how the RPC ended after the driver's GOAWAY, e.g. the driver died
	}
	if err := s.ctx.Err(); err != nil && !s.isClosed() {
		return s.c.wrap(s.ctx, s.op, status.FromContextError(err).Err())
	}
	return nil
}

// upstream copies conn to the stream until conn's EOF (then half-closes the stream) or until
// either side fails. Only a failure of conn is returned (and cuts the stream); a failed Write
// means the stream is over, which downstream reports.
func (s *Stream) upstream(conn io.Reader, connClosed *atomic.Bool) error {
	fr := protocol.NewFrameReader(conn)
	for {
		f, err := fr.Next()
		if f != nil {
			if werr := s.send(f); werr != nil {
				return nil
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			_ = s.CloseWrite() // fails only when the stream is over, which downstream reports
			return nil
		case err != nil:
			if connClosed.Load() {
				return nil
			}
			_ = s.Close()
			return err
		}
	}
}

// downstream copies the stream's frames to conn until the driver's data ends (nil) or either
// side fails.
func (s *Stream) downstream(conn io.Writer, connClosed *atomic.Bool) error {
	for {
		f, err := s.nextFrame()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = f.WriteTo(conn)
		f.Free()
		s.pending = nil
		if err != nil {
			if connClosed.Load() {
				return nil
			}
			_ = s.Close()
			return err
		}
	}
}
