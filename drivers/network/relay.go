package network

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// maxDatagram is the largest UDP payload (IPv6 without jumbograms; IPv4's is
// smaller and enforced by the kernel).
const maxDatagram = 65527

// halfCloser is a connection whose write side closes alone (TCP, unix).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relayStream copies bytes both ways between the client and a stream
// connection, passing half-closes along. It returns when both directions
// are done, when either fails, or when the client goes away.
//
// The client's data is read in its own goroutine; the target's is read
// here, so nothing writes to conn after this returns. When the target fails
// first, the client's goroutine may still wait in conn.Read: it ends with the
// stream (the SDK cannot interrupt a Read) and only touches the closed
// connection.
func (n *Network) relayStream(ctx context.Context, conn sdk.Conn, c halfCloser) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	up := make(chan error, 1)
	go func() {
		err := n.copyUp(conn, c)
		up <- err // before closing, so the failure below is known to be this one
		if err != nil {
			c.Close()
		}
	}()
	err := n.copyDown(c, conn)
	if err == nil {
		// The target is done sending; the stream ends when the client is.
		select {
		case err = <-up:
			return err
		case <-ctx.Done():
			<-up // the connection is closed and the client gone: it returns now
			return ctx.Err()
		}
	}
	return n.failed(ctx, err, up)
}

// relayDatagrams relays datagrams both ways between the client and a
// connected UDP socket, one frame per datagram. It returns when either way
// fails or the client goes away; the client's half-close stops only its
// direction.
func (n *Network) relayDatagrams(ctx context.Context, conn sdk.Conn, c net.Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	up := make(chan error, 1)
	go func() {
		err := n.sendDatagrams(conn, c)
		up <- err
		if err != nil {
			c.Close()
		}
	}()
	return n.failed(ctx, n.receiveDatagrams(c, conn), up)
}

// failed picks the error a stream ends with once the target-to-client
// direction failed with err: the client going away, or the client's
// direction failing first (which closed the connection under this one).
func (n *Network) failed(ctx context.Context, err error, up <-chan error) error {
	if ctx.Err() != nil {
		<-up
		return ctx.Err()
	}
	select {
	case uerr := <-up:
		if uerr != nil {
			return uerr
		}
	default:
	}
	return err
}

// copyUp copies the client's bytes to the target; at the client's half-close
// it shuts down the connection's write side. io.Copy hands each frame's
// buffers to the connection as they arrived (the SDK's Conn is an
// io.WriterTo), so the bytes are not copied on the way.
func (n *Network) copyUp(conn sdk.Conn, c halfCloser) error {
	if _, err := io.Copy(c, conn); err != nil {
		return n.targetError(err)
	}
	if err := c.CloseWrite(); err != nil {
		return n.ioError(err)
	}
	return nil
}

// copyDown copies the target's bytes to the client; at the target's end of
// data it tells the client no more follows. Each read of the connection
// goes out as one frame, from the buffer it was read into (the SDK's Conn
// is an io.ReaderFrom).
func (n *Network) copyDown(c net.Conn, conn sdk.Conn) error {
	if _, err := io.Copy(conn, c); err != nil {
		return n.targetError(err)
	}
	return conn.CloseWrite()
}

// targetError explains err when the target's connection failed (a
// *net.OpError) and returns the stream's own errors as they are.
func (n *Network) targetError(err error) error {
	if op := (*net.OpError)(nil); errors.As(err, &op) {
		return n.ioError(err)
	}
	return err
}

// sendDatagrams sends each frame from the client as one datagram. A frame
// is read whole because the buffer is larger than any datagram.
func (n *Network) sendDatagrams(conn sdk.Conn, c net.Conn) error {
	buf := make([]byte, maxDatagram+1)
	for {
		nr, err := conn.Read(buf)
		if nr > maxDatagram {
			return kindErrorf(sdk.ErrInvalidArgument, "%s: a frame of more than %d bytes does not fit in one datagram", n.url(), maxDatagram)
		}
		if nr > 0 {
			if _, werr := c.Write(buf[:nr]); werr != nil {
				if errors.Is(werr, syscall.EMSGSIZE) {
					return kindErrorf(sdk.ErrInvalidArgument, "%s: a frame of %d bytes does not fit in one datagram", n.url(), nr)
				}
				return n.ioError(werr)
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

// receiveDatagrams sends each datagram received to the client as one frame.
func (n *Network) receiveDatagrams(c net.Conn, conn sdk.Conn) error {
	buf := make([]byte, maxDatagram+1)
	for {
		nr, err := c.Read(buf)
		if err != nil {
			return n.ioError(err)
		}
		if _, err := conn.Write(buf[:nr]); err != nil {
			return err
		}
	}
}

// ioError explains a failed read or write of the target's connection.
func (n *Network) ioError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return kindErrorf(sdk.ErrUnavailable, "%s: nothing is listening there (%v)", n.url(), cause(err))
	}
	return kindErrorf(sdk.ErrIO, "%s: %v", n.url(), cause(err))
}
