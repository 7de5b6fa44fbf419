package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

// udpQueue is how many datagrams from one peer wait for its stream; more are dropped, as UDP
// may drop them anyway.
const udpQueue = 64

// forwardUDP listens on UDP at addr and gives each peer its own byte stream to the driver at
// path until the command's context ends.
func (g *globals) forwardUDP(cmd *cobra.Command, f *forwardFlags, addr, path string) error {
	c, d, err := g.streamTarget(cmd, path, f.method)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmd.Context()
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	conn := pc.(*net.UDPConn)
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if _, err := fmt.Fprintf(cmd.OutOrStdout(), "forwarding %s -> %s (udp)\n", conn.LocalAddr(), displayPath(d)); err != nil {
		return err
	}
	u := &udpForwarder{
		c: c, uuid: d.UUID, method: f.method, conn: conn, idle: f.idle,
		log:   newLineLog(cmd.ErrOrStderr()),
		peers: map[string]*udpPeer{},
	}
	return u.run(ctx)
}

// udpForwarder relays datagrams between UDP peers and one byte stream per peer.
type udpForwarder struct {
	c      *client.Client
	uuid   string
	method string
	conn   *net.UDPConn
	idle   time.Duration
	log    *lineLog

	mu    sync.Mutex
	peers map[string]*udpPeer // by address
	wg    sync.WaitGroup
}

// udpPeer is one remote address and the datagrams from it on their way to its stream.
type udpPeer struct {
	addr *net.UDPAddr
	in   chan []byte
}

// run reads datagrams until ctx ends (or the socket fails) and waits for the peers' streams.
func (u *udpForwarder) run(ctx context.Context) error {
	defer u.wg.Wait()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("forward: %w", err)
		}
		if n == 0 {
			continue
		}
		u.deliver(ctx, addr, bytes.Clone(buf[:n]))
	}
}

// deliver queues a datagram for its peer's stream, starting one for a new peer.
func (u *udpForwarder) deliver(ctx context.Context, addr *net.UDPAddr, p []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := addr.String()
	peer, ok := u.peers[key]
	if !ok {
		peer = &udpPeer{addr: addr, in: make(chan []byte, udpQueue)}
		u.peers[key] = peer
		u.wg.Go(func() {
			defer u.forget(key)
			if err := u.serve(ctx, peer); err != nil && ctx.Err() == nil {
				u.log.Printf("jw: forward %s: peer %s: %v", u.conn.LocalAddr(), key, err)
			}
		})
	}
	select {
	case peer.in <- p:
	default: // the stream is behind: drop, as a congested network would
	}
}

// forget removes a peer whose stream is over; its next datagram opens a new stream.
func (u *udpForwarder) forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.peers, key)
}

// serve runs one peer's stream: datagrams to frames on this goroutine, frames to datagrams on
// another, until the stream ends, the peer is idle for u.idle, or ctx ends.
func (u *udpForwarder) serve(ctx context.Context, peer *udpPeer) error {
	s, err := u.c.Stream(ctx, u.uuid, u.method)
	if err != nil {
		return err
	}
	defer s.Close()
	var last atomic.Int64 // time of the last traffic, in Unix nanoseconds
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()

	down := make(chan error, 1)
	go func() {
		for {
			f, err := s.ReadFrame()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				down <- err
				return
			}
			touch()
			if _, err := u.conn.WriteToUDP(f, peer.addr); err != nil {
				if ctx.Err() != nil {
					down <- nil
					return
				}
				u.log.Printf("jw: forward %s: peer %s: %v", u.conn.LocalAddr(), peer.addr, err)
			}
		}
	}()

	idle := time.NewTimer(u.idle)
	defer idle.Stop()
	for {
		select {
		case p := <-peer.in:
			touch()
			// A failed write means the stream is over; the reading goroutine says why.
			_, _ = s.Write(p)
		case err := <-down:
			return err
		case <-idle.C:
			if left := u.idle - time.Since(time.Unix(0, last.Load())); left > 0 {
				idle.Reset(left)
				continue
			}
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
