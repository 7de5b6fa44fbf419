package bench

import (
	"testing"
)

// TestStreamBenchmarks runs each measurement of the byte-stream benchmarks
// once, at tiny scale, so their code is checked with the rest of the suite
// (as TestBenchmarks does for the others). It asserts that the transfers and
// round trips succeed and the figures exist, never a timing. The socat and
// ssh -L baselines and the console's pseudo-terminals are skipped, saying
// why, where socat or OpenSSH is missing.
func TestStreamBenchmarks(t *testing.T) {
	smoke(t)
	t.Run("StreamThroughput", func(t *testing.T) {
		t.Parallel()
		jw, floor := jumpwireStreamer(t), floorStreamer(t)
		for _, method := range []string{"sink", "echo"} {
			for _, s := range []struct {
				name string
				st   streamer
			}{{"jumpwire", jw}, {"floor", floor}} {
				for _, chunk := range []int{4 << 10, 1 << 20} {
					d, err := s.st(t.Context(), method, 1<<20+1, chunk)
					if err != nil || d <= 0 {
						t.Errorf("%s %s in chunks of %d: %v, %v", s.name, method, chunk, d, err)
					}
				}
			}
		}
	})
	t.Run("ForwardThroughput", func(t *testing.T) {
		t.Parallel()
		target := startTarget(t)
		jw := jwForwardTunnel(t.Context(), t, target)
		check := func(t *testing.T, tn tunnel) {
			for _, op := range []byte{opUp, opDown} {
				if d, err := relayOnce(t.Context(), tn.addr, op, 1<<20+1); err != nil || d <= 0 {
					t.Errorf("%s %s: %v, %v", tn.name, dirName(op), d, err)
				}
			}
		}
		check(t, jw)
		t.Run("socat", func(t *testing.T) { check(t, socatTunnel(t.Context(), t, target)) })
		t.Run("ssh", func(t *testing.T) { check(t, sshTunnel(t.Context(), t, target)) })
	})
	t.Run("ConsoleLatency", func(t *testing.T) {
		t.Parallel()
		console, pty := consoleRoundTrip(t), ptyRoundTrip(t)
		for i := range 5 {
			for name, rt := range map[string]roundTrip{"console": console, "pty": pty} {
				if d, err := rt(byte('a' + i)); err != nil || d <= 0 {
					t.Errorf("%s round trip %d: %v, %v", name, i, d, err)
				}
			}
		}
	})
	t.Run("IdleStreams", func(t *testing.T) {
		t.Parallel()
		// More than a session's default limit of streams, as the benchmark.
		const n = 100
		m := measureIdleStreams(t.Context(), t, n)
		if m.exporter[0] <= 0 || m.exporter[1] <= 0 || m.plugin[0] <= 0 || m.plugin[1] <= 0 || len(m.open) != n {
			t.Errorf("exporter RSS %v, plugin RSS %v, %d streams opened", m.exporter, m.plugin, len(m.open))
		}
	})
}
