package bench

import (
	"context"
	"flag"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/host"
)

var (
	restartSamples = flag.Int("restart.samples", 30,
		"BenchmarkRestart: kills (and as many cold starts) per iteration of each variant")
	stormDuration = flag.Duration("storm.duration", 10*time.Second,
		"BenchmarkKillStorm: how long driver A is killed per iteration; the baseline without kills runs as long again")
	stormLaunches = flag.Bool("storm.launches", false,
		"BenchmarkKillStorm: also run B's load for as long again while a power plugin outside the exporter is cold-started every 100ms (a diagnostic)")
)

// restartWindow is the crash window of BenchmarkRestart's policy. Kills are
// spaced by more than it, so each restart is a driver's first in its
// window and waits the initial backoff, not a doubled one.
const restartWindow = 20 * time.Millisecond

// backoffLog learns how long each restart waited (the backoff with its
// jitter) from the supervisor's log line announcing it.
type backoffLog struct{ waits chan time.Duration }

func (w *backoffLog) Accept(_ string, _ hclog.Level, msg string, args ...any) {
	if msg != "driver process exited; restarting" {
		return
	}
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "in" {
			if d, ok := args[i+1].(time.Duration); ok {
				select {
				case w.waits <- d:
				default:
				}
			}
		}
	}
}

// restarter kills a power instance's process and times how long the
// exporter takes to answer a call again.
type restarter struct {
	s        *served
	uuid     string
	call     caller
	waits    chan time.Duration
	lastKill time.Time
}

// newRestarter serves one power instance whose crashes are restarted after
// backoff (0: the default), the crash-loop breaker out of the way.
func newRestarter(tb testing.TB, backoff time.Duration) *restarter {
	tb.Helper()
	logs := &backoffLog{waits: make(chan time.Duration, 16)}
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: io.Discard})
	logger.RegisterSink(logs)
	policy := host.Policy{InitialBackoff: backoff, MaxCrashes: 1 << 20, Window: restartWindow}
	s := serveExporter(tb, exporterConfig(tb, 1), exporter.Options{Logger: logger, RestartPolicy: &policy})
	id := s.uuid(tb, "power00")
	r := &restarter{s: s, uuid: id, call: driverCall(s.c, id, "state"), waits: logs.waits}
	for range 20 { // warm up the connection
		callOnce(tb.Context(), tb, "power00", r.call)
	}
	return r
}

// once SIGKILLs the instance's process and at once calls it until a call
// succeeds (the first call waits for the restart). It returns the time from
// the kill to that answer, the backoff the supervisor waited, and how many
// calls failed on the way (none should: a call issued after the kill waits).
func (r *restarter) once(ctx context.Context, tb testing.TB) (took, waited time.Duration, failed int) {
	tb.Helper()
	if gap := restartWindow + 5*time.Millisecond - time.Since(r.lastKill); gap > 0 {
		time.Sleep(gap) // let the previous crash leave the window
	}
	pid := r.s.pid(r.uuid)
	if pid == 0 {
		tb.Fatal("power00 has no process to kill")
	}
	select { // forget waits logged by anything else
	case <-r.waits:
	default:
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	r.lastKill = start
	for {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := r.call(cctx)
		cancel()
		if err == nil {
			break
		}
		failed++
		if time.Since(start) > 15*time.Second {
			tb.Fatalf("power00 did not answer within 15s of its kill: %v", err)
		}
	}
	took = time.Since(start)
	select {
	case waited = <-r.waits:
	case <-time.After(5 * time.Second):
		tb.Fatal("the supervisor logged no restart")
	}
	if now := r.s.pid(r.uuid); now == pid || now == 0 {
		tb.Fatalf("power00 answered after its kill, but its process is %d (was %d)", now, pid)
	}
	return took, waited, failed
}

// BenchmarkRestart measures how long a killed driver takes to serve again:
// from SIGKILL of a power instance's plugin process (an exporter in this
// process serving it, a client on its unix socket) to the answer of a call
// issued right after the kill, which waits for the supervisor's restart
// (noticing the exit, the backoff, launch, handshake, describe, configure,
// reset, then the call). The baseline is a cold start of the same binary
// (host.Start and a first Instance.Call, as BenchmarkColdStart), one per
// kill, alternating which goes first. Two variants: the default policy
// (InitialBackoff 10ms, ±20% jitter) and InitialBackoff 1ms, the
// mechanism's own cost. Each iteration makes -restart.samples kills.
// Reported: p50/p99 from kill to answer and of the cold start, their
// ratios (x-cold-*); the same minus the configured backoff
// (minus-config-p50-ns, x-cold-minus-config-p50) and minus the backoff
// actually waited, jitter included, per kill (net-*, x-cold-net-*); the
// waited backoff's p50; and calls that failed after a kill (failed-calls).
func BenchmarkRestart(b *testing.B) {
	for _, v := range []struct {
		name    string
		backoff time.Duration // configured; 0 is the default
	}{{"backoff=default", 0}, {"backoff=1ms", time.Millisecond}} {
		b.Run(v.name, func(b *testing.B) {
			ctx := b.Context()
			r, bin := newRestarter(b, v.backoff), powerPlugin(b)
			configured := v.backoff
			if configured == 0 {
				configured = 10 * time.Millisecond // host.Policy's default
			}
			startPower(ctx, b, bin).stop() // warm the page cache
			r.once(ctx, b)
			var (
				restarts, colds, nets, less, waits []time.Duration
				failed                             int
			)
			for b.Loop() {
				for i := range *restartSamples {
					var cold started
					if i%2 == 1 {
						cold = startPower(ctx, b, bin)
						cold.stop()
					}
					took, waited, f := r.once(ctx, b)
					if i%2 == 0 {
						cold = startPower(ctx, b, bin)
						cold.stop()
					}
					restarts, colds = append(restarts, took), append(colds, cold.took)
					nets, less, waits = append(nets, took-waited), append(less, took-configured), append(waits, waited)
					failed += f
				}
			}
			p50, p99 := percentile(restarts, 50), percentile(restarts, 99)
			c50, c99 := percentile(colds, 50), percentile(colds, 99)
			n50, n99 := percentile(nets, 50), percentile(nets, 99)
			l50 := percentile(less, 50)
			b.ReportMetric(ns(p50), "p50-ns")
			b.ReportMetric(ns(p99), "p99-ns")
			b.ReportMetric(ns(c50), "cold-p50-ns")
			b.ReportMetric(ns(c99), "cold-p99-ns")
			b.ReportMetric(ratio(p50, c50), "x-cold-p50")
			b.ReportMetric(ratio(p99, c99), "x-cold-p99")
			b.ReportMetric(ns(l50), "minus-config-p50-ns")
			b.ReportMetric(ratio(l50, c50), "x-cold-minus-config-p50")
			b.ReportMetric(ns(percentile(waits, 50)), "waited-p50-ns")
			b.ReportMetric(ns(n50), "net-p50-ns")
			b.ReportMetric(ns(n99), "net-p99-ns")
			b.ReportMetric(ratio(n50, c50), "x-cold-net-p50")
			b.ReportMetric(ratio(n99, c99), "x-cold-net-p99")
			b.ReportMetric(float64(failed), "failed-calls")
		})
	}
}

// Kill storm settings: driver A is killed every stormEvery while
// stormWorkers goroutines call driver B, in segments of stormSegment
// alternating with segments of the same load and no kills.
const (
	stormEvery   = 100 * time.Millisecond
	stormWorkers = 4
	stormSegment = time.Second
)

// stormPolicy restarts A 10ms after each kill, so that it is up again
// before the next kill (the default backoff doubles with each crash in the
// window, up to 5s, and A would spend the storm waiting), and never trips
// the crash-loop breaker.
var stormPolicy = host.Policy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxCrashes: 1 << 20}

// stormResult is what a kill storm did and what B's callers saw.
type stormResult struct {
	load     loadResult
	kills    int  // SIGKILLs sent to A
	skipped  int  // ticks when A had no process to kill (restarting)
	restarts int  // A's restarts, from its health
	tripped  bool // A was seen failed (the crash-loop breaker tripped)
}

// runStorm runs B's load for 2*total: segments of seg with A killed every
// stormEvery (counted as phaseBusy) alternating with segments without kills
// (phaseQuiet), which goes first alternating too. Between segments, A is
// given time to come back and calls are not counted (unless they fail).
// With launches (the path of a power plugin binary), a third kind of
// segment joins the rotation (phaseNoise): no kills, but that binary is
// cold-started and stopped every stormEvery outside the exporter, which
// costs the machine about what A's restarts cost it.
func runStorm(ctx context.Context, tb testing.TB, s *served, a, bID string, total, seg time.Duration, launches string) stormResult {
	tb.Helper()
	sess := s.e.Session()
	before, _ := sess.Health(a)
	bPid := s.pid(bID)
	var res stormResult
	kinds := []int{phaseQuiet, phaseBusy}
	if launches != "" {
		kinds = append(kinds, phaseNoise)
	}
	l := startLoad(ctx, driverCall(s.c, bID, "state"), stormWorkers, 10*time.Second)
	for i := range max(int(total/seg), 1) {
		for j := range kinds {
			switch kinds[(i+j)%len(kinds)] {
			case phaseQuiet:
				l.set(phaseQuiet)
				select {
				case <-ctx.Done():
				case <-time.After(seg):
				}
				l.set(phaseIgnore)
				continue
			case phaseNoise:
				l.set(phaseNoise)
				coldStartEvery(ctx, tb, launches, seg)
				l.set(phaseIgnore)
				continue
			}
			l.set(phaseBusy)
			kills, skipped, tripped := killEvery(ctx, sess.Health, a, seg)
			l.set(phaseIgnore)
			res.kills, res.skipped, res.tripped = res.kills+kills, res.skipped+skipped, res.tripped || tripped
			if !waitFor(ctx, 15*time.Second, func() bool {
				h, _ := sess.Health(a)
				return h.State == host.Running && h.Pid != 0
			}) {
				h, _ := sess.Health(a)
				tb.Fatalf("driver A did not come back after the storm: %+v", h)
			}
		}
	}
	res.load = l.finish()
	after, _ := sess.Health(a)
	res.restarts = after.Restarts - before.Restarts
	if now := s.pid(bID); now != bPid {
		tb.Errorf("driver B's process changed during the storm: %d -> %d", bPid, now)
	}
	return res
}

// killEvery SIGKILLs a's process at once and then every stormEvery, for d.
// A tick when a has no process, or still the one killed last, is skipped.
func killEvery(ctx context.Context, health func(string) (host.Health, bool), a string, d time.Duration) (kills, skipped int, tripped bool) {
	end := time.After(d)
	t := time.NewTicker(stormEvery)
	defer t.Stop()
	last := 0
	for {
		h, _ := health(a)
		tripped = tripped || h.State == host.Failed
		if h.State == host.Running && h.Pid != 0 && h.Pid != last && syscall.Kill(h.Pid, syscall.SIGKILL) == nil {
			kills, last = kills+1, h.Pid
		} else {
			skipped++
		}
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-t.C:
		}
	}
}

// coldStartEvery starts a power instance from binary outside any exporter
// (as BenchmarkColdStart does) and stops it, at once and then every
// stormEvery, for d.
func coldStartEvery(ctx context.Context, tb testing.TB, binary string, d time.Duration) {
	end := time.After(d)
	t := time.NewTicker(stormEvery)
	defer t.Stop()
	for {
		startPower(ctx, tb, binary).stop()
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-t.C:
		}
	}
}

// BenchmarkKillStorm measures how well drivers are isolated from each
// other's crashes: an exporter in this process serves two power instances,
// A and B; 4 goroutines call B's "state" in a loop through a client while
// A's plugin process is SIGKILLed every 100ms (restarted 10ms after each
// kill, see stormPolicy). The baseline is the same load on B with no kills,
// in segments of 1s alternating with the storm's, as long in all
// (-storm.duration each, default 10s). Reported: B's failed calls (all
// segments; target 0), B's p50/p99 during the storm and without it
// (quiet-*) and their ratios (x-quiet-*; target p99 at most 1.5x), B's
// calls during the storm, A's kills, skipped ticks and restarts, and
// tripped (1 if A's crash-loop breaker tripped). With -storm.launches, a
// diagnostic: B's p50/p99 (launches-*, x-quiet-launches-*) while a power
// plugin outside the exporter is cold-started and stopped every 100ms
// instead of A being killed, in segments of their own, as long in all.
func BenchmarkKillStorm(b *testing.B) {
	s := serveExporter(b, exporterConfig(b, 2), exporter.Options{RestartPolicy: &stormPolicy})
	launches := ""
	if *stormLaunches {
		launches = powerPlugin(b)
	}
	a, bID := s.uuid(b, "power00"), s.uuid(b, "power01")
	for range 200 {
		callOnce(b.Context(), b, "B", driverCall(s.c, bID, "state"))
	}
	var res []stormResult
	for b.Loop() {
		res = append(res, runStorm(b.Context(), b, s, a, bID, *stormDuration, min(stormSegment, *stormDuration), launches))
	}
	var (
		storm, quiet, noise              []time.Duration
		failed, kills, skipped, restarts int
		tripped                          float64
	)
	for _, r := range res {
		storm, quiet = append(storm, r.load.took[phaseBusy]...), append(quiet, r.load.took[phaseQuiet]...)
		noise = append(noise, r.load.took[phaseNoise]...)
		failed, kills, skipped, restarts = failed+r.load.failed(), kills+r.kills, skipped+r.skipped, restarts+r.restarts
		if r.tripped {
			tripped = 1
		}
		if r.load.first != nil {
			b.Logf("first failed call on B: %v", r.load.first)
		}
	}
	s50, s99, q50, q99 := percentile(storm, 50), percentile(storm, 99), percentile(quiet, 50), percentile(quiet, 99)
	b.ReportMetric(float64(failed), "b-failed")
	b.ReportMetric(ns(s50), "b-p50-ns")
	b.ReportMetric(ns(s99), "b-p99-ns")
	b.ReportMetric(ns(q50), "quiet-p50-ns")
	b.ReportMetric(ns(q99), "quiet-p99-ns")
	b.ReportMetric(ratio(s50, q50), "x-quiet-p50")
	b.ReportMetric(ratio(s99, q99), "x-quiet-p99")
	b.ReportMetric(float64(len(storm)), "b-calls")
	b.ReportMetric(float64(len(quiet)), "quiet-calls")
	b.ReportMetric(float64(kills), "a-kills")
	b.ReportMetric(float64(skipped), "a-skipped")
	b.ReportMetric(float64(restarts), "a-restarts")
	b.ReportMetric(tripped, "tripped")
	if launches != "" {
		n50, n99 := percentile(noise, 50), percentile(noise, 99)
		b.ReportMetric(ns(n50), "launches-p50-ns")
		b.ReportMetric(ns(n99), "launches-p99-ns")
		b.ReportMetric(ratio(n50, q50), "x-quiet-launches-p50")
		b.ReportMetric(ratio(n99, q99), "x-quiet-launches-p99")
	}
}

// TestSupervisionBenchmarks runs each supervision and hot-swap measurement
// once at tiny scale, so their code is checked with the rest of the suite
// (as TestBenchmarks does for the others). It asserts what a user would
// notice, never a timing: a call issued after a kill waits for the restart,
// no call to another driver fails during a kill storm, no call fails
// during swaps, and a reload keeps the processes of unchanged instances.
func TestSupervisionBenchmarks(t *testing.T) {
	smoke(t)
	t.Run("Restart", func(t *testing.T) {
		t.Parallel()
		r := newRestarter(t, time.Millisecond)
		for range 2 {
			if took, waited, failed := r.once(t.Context(), t); failed > 0 || took <= waited {
				t.Errorf("restart in %v after a backoff of %v, %d calls failed", took, waited, failed)
			}
		}
	})
	t.Run("KillStorm", func(t *testing.T) {
		t.Parallel()
		s := serveExporter(t, exporterConfig(t, 2), exporter.Options{RestartPolicy: &stormPolicy})
		res := runStorm(t.Context(), t, s, s.uuid(t, "power00"), s.uuid(t, "power01"), 500*time.Millisecond, 250*time.Millisecond, "")
		if n := res.load.failed(); n > 0 {
			t.Errorf("%d calls to B failed while A was killed, first: %v", n, res.load.first)
		}
		if res.kills == 0 || res.restarts == 0 || res.tripped || len(res.load.took[phaseBusy]) == 0 {
			t.Errorf("A killed %d times, restarted %d, tripped %v; B answered %d calls in the storm",
				res.kills, res.restarts, res.tripped, len(res.load.took[phaseBusy]))
		}
	})
	t.Run("SwapUnderLoad", func(t *testing.T) {
		t.Parallel()
		res := newSwapper(t).run(t.Context(), t, 4, 4)
		if n := res.load.failed(); n > 0 {
			t.Errorf("%d calls failed during swaps, first: %v", n, res.load.first)
		}
		if len(res.load.took[phaseBusy]) == 0 || len(res.reloads) != 4 {
			t.Errorf("%d calls answered during %d swaps", len(res.load.took[phaseBusy]), len(res.reloads))
		}
	})
	t.Run("Reload", func(t *testing.T) {
		t.Parallel()
		r, _ := newReloader(t, 10)
		r.round(t.Context(), t)
		r.round(t.Context(), t)
	})
}
