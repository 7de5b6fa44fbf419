package bench

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/ptypair"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"go.bug.st/serial"
)

// roundTrip sends one byte and waits for its echo, returning how long that
// took.
type roundTrip func(b byte) (time.Duration, error)

// echoDevice plays a device that echoes every byte on the peer end of a
// pseudo-terminal pair, until the test ends.
func echoDevice(tb testing.TB, p *ptypair.Pair) {
	tb.Helper()
	f := p.OpenPeer(tb) // closed at the end of the test, which ends the loop
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := f.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
}

// echoAnswer checks that got is the echo of sent.
func echoAnswer(name string, sent byte, got []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: read the echo: %w", name, err)
	}
	if len(got) != 1 || got[0] != sent {
		return fmt.Errorf("%s: sent %#x, the echo is %x", name, sent, got)
	}
	return nil
}

// consoleRoundTrip opens the console path to a pseudo-terminal whose other
// end echoes: client.Stream to "connect" of a serial driver, through an
// exporter in this process (unix socket) and the serial plugin process.
func consoleRoundTrip(tb testing.TB) roundTrip {
	tb.Helper()
	p := ptypair.Start(tb)
	echoDevice(tb, p)
	cfg := writeConfig(tb, fmt.Sprintf("  console:\n    type: serial\n    config: {url: %q}\n", p.Port))
	sock := serveInProcess(tb, cfg, testbin.PluginDir(tb, "serial"))
	c, d := dialDriver(tb.Context(), tb, sock, "console")
	s, err := c.Stream(tb.Context(), d.UUID, "connect")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	buf := make([]byte, 1)
	return func(b byte) (time.Duration, error) {
		var (
			n   int
			err error
		)
		took := timed(func() {
			if _, err = s.Write([]byte{b}); err == nil {
				n, err = s.Read(buf)
			}
		})
		return took, echoAnswer("console", b, buf[:n], err)
	}
}

// ptyRoundTrip opens the bare path: a pseudo-terminal whose other end
// echoes, opened by this process with the serial library the driver uses.
func ptyRoundTrip(tb testing.TB) roundTrip {
	tb.Helper()
	p := ptypair.Start(tb)
	echoDevice(tb, p)
	port, err := serial.Open(p.Port, &serial.Mode{BaudRate: 115200, DataBits: 8})
	if err != nil {
		tb.Fatalf("open %s: %v", p.Port, err)
	}
	tb.Cleanup(func() { _ = port.Close() })
	buf := make([]byte, 1)
	return func(b byte) (time.Duration, error) {
		var (
			n   int
			err error
		)
		took := timed(func() {
			if _, err = port.Write([]byte{b}); err == nil {
				n, err = port.Read(buf)
				if n == 0 && err == nil {
					err = io.ErrUnexpectedEOF
				}
			}
		})
		return took, echoAnswer("pty", b, buf[:n], err)
	}
}

// BenchmarkConsoleLatency measures interactive latency on the console path:
// one byte from a client through the exporter (in this process, unix
// socket) to the serial driver's plugin process, out of a pseudo-terminal
// (a socat pair) to a goroutine that echoes it, and back the same way;
// against the same one-byte echo on a bare pseudo-terminal pair, written and
// read by this process through the serial library the driver uses (each path
// has its own socat pair, since the driver holds its port exclusively).
//
// Each iteration makes one round trip of each kind, alternating which goes
// first; ns/op is the pair. Reported: p50 and p99 of the console's round
// trips (p50-ns, p99-ns), of the bare pty's (pty-p50-ns, pty-p99-ns), their
// ratios (x-pty-p50, x-pty-p99), and what jumpwire adds at the median
// (added-p50-us).
func BenchmarkConsoleLatency(b *testing.B) {
	console, pty := consoleRoundTrip(b), ptyRoundTrip(b)
	one := func(name string, rt roundTrip, x byte) time.Duration {
		d, err := rt(x)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	for i := range 200 { // warm up both paths
		one("console", console, byte(i))
		one("pty", pty, byte(i))
	}
	var cs, ps []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			cs = append(cs, one("console", console, byte(i)))
			ps = append(ps, one("pty", pty, byte(i)))
		} else {
			ps = append(ps, one("pty", pty, byte(i)))
			cs = append(cs, one("console", console, byte(i)))
		}
	}
	reportPair(b, "pty", cs, ps, 50, 99)
	b.ReportMetric(float64(percentile(cs, 50)-percentile(ps, 50))/float64(time.Microsecond), "added-p50-us")
}
