package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// The target's protocol: one op byte, then for opDown the number of bytes to
// send (8 bytes, big endian).
const (
	opProbe = 'p' // answer "ok" and close: the relay is up
	opUp    = 'u' // read to EOF, answer the count (8 bytes, big endian)
	opDown  = 'd' // send that many bytes, then close
)

// errShort is a transfer that moved fewer bytes than it should have.
var errShort = errors.New("short transfer")

// relayBuf is the size of the target's and the benchmark client's reads and
// writes: large, so neither end limits a relay.
const relayBuf = 256 << 10

// startTarget starts the TCP server every relay of BenchmarkForwardThroughput
// leads to (in this process, on loopback) and returns its address.
func startTarget(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go serveTarget(c.(*net.TCPConn))
		}
	}()
	return lis.Addr().String()
}

// serveTarget serves one connection of the target.
func serveTarget(c *net.TCPConn) {
	defer c.Close()
	var op [1]byte
	if _, err := io.ReadFull(c, op[:]); err != nil {
		return
	}
	switch op[0] {
	case opProbe:
		_, _ = c.Write([]byte("ok"))
	case opUp:
		n, err := drain(c)
		if err != nil {
			return
		}
		_, _ = c.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	case opDown:
		var size [8]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		if err := fill(c, int64(binary.BigEndian.Uint64(size[:]))); err != nil {
			return
		}
	}
	// An orderly end: half-close, and wait for the peer's, so that no
	// unread byte turns the close into a reset.
	_ = c.CloseWrite()
	_, _ = drain(c)
}

// drain reads r to EOF and returns how many bytes it read.
func drain(r io.Reader) (int64, error) {
	buf := make([]byte, relayBuf)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// fill writes n patterned bytes to w.
func fill(w io.Writer, n int64) error {
	buf := pattern(relayBuf)
	for n > 0 {
		m, err := w.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return err
		}
		n -= int64(m)
	}
	return nil
}

// relayOnce connects to addr and moves size bytes through it to the target
// (op opUp) or from it (opDown), and returns how long it took from dialing
// to the last byte (or the target's count).
func relayOnce(ctx context.Context, addr string, op byte, size int64) (time.Duration, error) {
	start := time.Now()
	var dl net.Dialer
	nc, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	switch op {
	case opUp:
		if _, err := c.Write([]byte{opUp}); err != nil {
			return 0, err
		}
		if err := fill(c, size); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if err := c.CloseWrite(); err != nil {
			return 0, err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return 0, fmt.Errorf("read the count: %w", err)
		}
		if len(b) != 8 || int64(binary.BigEndian.Uint64(b)) != size {
			return 0, fmt.Errorf("%w: the target answered %x, want the count %d", errShort, b, size)
		}
	case opDown:
		req := binary.BigEndian.AppendUint64([]byte{opDown}, uint64(size))
		if _, err := c.Write(req); err != nil {
			return 0, err
		}
		if err := c.CloseWrite(); err != nil {
			return 0, err
		}
		n, err := drain(c)
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		if n != size {
			return 0, fmt.Errorf("%w: %d bytes arrived, want %d", errShort, n, size)
		}
	}
	return time.Since(start), nil
}

// jwForwardTunnel runs `jw run` (a subprocess) serving a network driver
// "net" of type tcp to target, and `jw forward tcp` (another) to it.
func jwForwardTunnel(ctx context.Context, tb testing.TB, target string) tunnel {
	tb.Helper()
	host, port, _ := net.SplitHostPort(target)
	cfg := writeConfig(tb, fmt.Sprintf("  net:\n    type: tcp\n    config: {host: %q, port: %s}\n", host, port))
	jw := runJW(ctx, tb, cfg, testbin.PluginDir(tb, "network"), 1)
	t := jwForward(ctx, tb, jw.sock, "net")
	if err := probeRetry(ctx, t.addr); err != nil {
		tb.Fatalf("jw forward does not relay: %v", err)
	}
	return t
}

// probeRetry probes addr until it answers, for at most 10s.
func probeRetry(ctx context.Context, addr string) error {
	var err error
	waitFor(ctx, 10*time.Second, func() bool { err = probe(ctx, addr); return err == nil })
	return err
}

// forwardPayload is what one transfer of BenchmarkForwardThroughput moves.
const forwardPayload = 64 << 20

// BenchmarkForwardThroughput measures `jw forward tcp` carrying a TCP
// connection to a target on loopback: client (this process) -> jw forward
// (a subprocess, local listener) -> the exporter (`jw run`, a subprocess) ->
// the network driver's plugin process -> the target (this process). The
// baselines, each a sub-benchmark, relay the same connection to the same
// target: socat (`socat TCP-LISTEN:P,fork TCP:target`, one process per
// connection, no encryption) and an OpenSSH tunnel (`ssh -L` to a private
// sshd on loopback, one encrypted channel per connection).
//
// Each iteration moves 64 MiB up (client to target, which answers the count
// after the client's half-close) and 64 MiB down (target to client, until
// its close), through jw forward and through the baseline, alternating which
// goes first; a transfer is timed from dialing to its last byte. Reported:
// the median throughput of each direction (up-MB/s, down-MB/s), the
// baseline's (<base>-up-MB/s, <base>-down-MB/s), and the ratios (x-<base>-up,
// x-<base>-down; higher is better for jw).
func BenchmarkForwardThroughput(b *testing.B) {
	ctx := b.Context()
	target := startTarget(b)
	jw := jwForwardTunnel(ctx, b, target)
	b.Run("socat", func(b *testing.B) {
		benchRelays(b, jw, socatTunnel(b.Context(), b, target), forwardPayload)
	})
	b.Run("ssh", func(b *testing.B) {
		benchRelays(b, jw, sshTunnel(b.Context(), b, target), forwardPayload)
	})
}

// benchRelays runs the interleaved transfers through jw and base and reports
// their figures.
func benchRelays(b *testing.B, jw, base tunnel, size int64) {
	ctx := b.Context()
	one := func(t tunnel, op byte) float64 {
		d, err := relayOnce(ctx, t.addr, op, size)
		if err != nil {
			b.Fatalf("%s %c: %v", t.name, op, err)
		}
		return mbps(size, d)
	}
	for _, t := range []tunnel{jw, base} { // warm up both, both ways
		one(t, opUp)
		one(t, opDown)
	}
	rates := map[string][]float64{}
	for i := 0; b.Loop(); i++ {
		order := []tunnel{jw, base}
		if i%2 == 1 {
			order = []tunnel{base, jw}
		}
		for _, op := range []byte{opUp, opDown} {
			for _, t := range order {
				key := t.name + "-" + dirName(op)
				rates[key] = append(rates[key], one(t, op))
			}
		}
	}
	for _, dir := range []string{"up", "down"} {
		mj, mb := medianFloat(rates[jw.name+"-"+dir]), medianFloat(rates[base.name+"-"+dir])
		b.ReportMetric(mj, dir+"-MB/s")
		b.ReportMetric(mb, base.name+"-"+dir+"-MB/s")
		b.ReportMetric(mj/mb, "x-"+base.name+"-"+dir)
	}
}

// dirName names a transfer's direction.
func dirName(op byte) string {
	if op == opUp {
		return "up"
	}
	return "down"
}
