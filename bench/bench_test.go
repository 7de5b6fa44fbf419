package bench

import (
	"testing"
	"time"
)

// TestBenchmarks runs each measurement of the benchmarks once, at tiny
// scale, so the benchmark code is checked with the rest of the suite. It
// asserts that the calls succeed and the figures exist, never a timing.
func TestBenchmarks(t *testing.T) {
	smoke(t)
	t.Run("DriverCall", func(t *testing.T) {
		t.Parallel()
		jw, floor := jumpwireCaller(t), floorCaller(t)
		for range 3 {
			callOnce(t.Context(), t, "jumpwire", jw)
			callOnce(t.Context(), t, "floor", floor)
		}
	})
	t.Run("DriverCallConcurrent", func(t *testing.T) {
		t.Parallel()
		jw, floor := jwProcessCaller(t), relayCaller(t)
		for range 3 {
			callOnce(t.Context(), t, "jumpwire", jw)
			callOnce(t.Context(), t, "floor", floor)
		}
		if r := callsPerSecond(t.Context(), t, "floor", floor, 4, 50*time.Millisecond); r <= 0 {
			t.Errorf("the floor answered no calls with 4 callers")
		}
	})
	t.Run("ColdStart", func(t *testing.T) {
		t.Parallel()
		power, bare := startPower(t.Context(), t, powerPlugin(t)), startBare(t.Context(), t, barePlugin(t))
		if power.took <= 0 || bare.took <= 0 || power.pid == bare.pid {
			t.Errorf("power started in %v as %d, bare in %v as %d", power.took, power.pid, bare.took, bare.pid)
		}
		if r := idleRSS(t.Context(), t, power.pid, bare.pid); r[0] <= 0 || r[1] <= 0 {
			t.Errorf("plugin RSS %v", r)
		}
		power.stop()
		bare.stop()
	})
	t.Run("Router", func(t *testing.T) {
		t.Parallel()
		l := leasedExporter(t)
		power, sink := lookup(t, l.router, "power"), lookup(t, l.router, "sink")
		timedCall(t.Context(), t, "router", clientCaller(l.router, power, "state"))
		timedCall(t.Context(), t, "direct", clientCaller(l.direct, power, "state"))
		for name, s := range map[string]streamer{"router": clientStreamer(l.router, sink), "direct": clientStreamer(l.direct, sink)} {
			if _, err := s(t.Context(), "sink", 1<<20, 64<<10); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("IdleRSS", func(t *testing.T) {
		t.Parallel()
		m := measureExporter(t.Context(), t, 2)
		if m.exporter <= 0 || m.plugins <= 0 || m.pss <= 0 {
			t.Errorf("exporter RSS %d, plugins' %d, PSS %d", m.exporter, m.plugins, m.pss)
		}
	})
}
