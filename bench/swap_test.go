package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

var (
	swapReloads = flag.Int("swap.reloads", 20,
		"BenchmarkSwapUnderLoad: reloads per iteration, each swapping the driver to the other build")
	reloadInstances = flag.Int("reload.instances", 100,
		"BenchmarkReload100: power instances in the config")
)

// swapCallers call the driver while it is swapped.
const swapCallers = 16

// swapper alternates the power plugin in a served exporter's plugin
// directory between two builds (versions 0.1.0 and 0.2.0) and reloads.
type swapper struct {
	s    *served
	uuid string
	bins [2][]byte // the builds' contents, the one installed first
	next int       // which build the next swap installs
	cold string    // the 0.1.0 build, for the baseline cold starts
}

// newSwapper serves one power instance (power00) and builds the second
// version of its plugin, with the flags other tests use.
func newSwapper(tb testing.TB) *swapper {
	tb.Helper()
	sw := &swapper{cold: powerPlugin(tb), next: 1}
	v2 := testbin.Build(tb, "./drivers/power/cmd/jumpwire-driver-power", "-ldflags=-X main.version=0.2.0")
	for i, p := range []string{sw.cold, v2} {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		sw.bins[i] = b
	}
	sw.s = serveExporter(tb, exporterConfig(tb, 1), exporter.Options{})
	sw.uuid = sw.s.uuid(tb, "power00")
	return sw
}

// swapResult is what a run of swaps did and what the callers saw.
type swapResult struct {
	load    loadResult
	reloads []time.Duration // each Reload call
	colds   []time.Duration // a cold start after each swap, under the same load
}

// run keeps callers goroutines calling the driver's "state" while it swaps
// the binary reloads times. Before each swap the callers run for as long
// as the previous swap took (phaseQuiet: the steady state); a swap
// (phaseBusy) lasts from the Reload call until the old process is gone,
// so its drain and stop count too. Installing the binary and a cold start
// of the power plugin (the baseline of the reload's duration, measured
// under the same load) happen between the two, uncounted.
func (sw *swapper) run(ctx context.Context, tb testing.TB, callers, reloads int) swapResult {
	tb.Helper()
	var res swapResult
	l := startLoad(ctx, driverCall(sw.s.c, sw.uuid, "state"), callers, 10*time.Second)
	steady := 100 * time.Millisecond
	for range reloads {
		l.set(phaseQuiet)
		select {
		case <-ctx.Done():
		case <-time.After(steady):
		}
		l.set(phaseIgnore)
		installBinary(tb, sw.s.dir, sw.bins[sw.next])
		want := "binary changed (version 0.1.0 -> 0.2.0)"
		if sw.next == 0 {
			want = "binary changed (version 0.2.0 -> 0.1.0)"
		}
		sw.next = 1 - sw.next
		old := sw.s.pid(sw.uuid)

		l.set(phaseBusy)
		start := time.Now()
		changes, err := sw.s.e.Reload(ctx)
		took := time.Since(start)
		if err != nil {
			tb.Fatalf("reload: %v", err)
		}
		if len(changes) != 1 || changes[0].Action != "replaced" || changes[0].Detail != want || changes[0].Err != nil {
			tb.Fatalf("reload changed %+v, want power00 replaced (%s)", changes, want)
		}
		if !pollFor(ctx, 10*time.Second, func() bool { return gone(old) }) {
			tb.Fatalf("the replaced process %d is still there 10s after the swap", old)
		}
		steady = time.Since(start)
		l.set(phaseIgnore)

		res.reloads = append(res.reloads, took)
		cold := startPower(ctx, tb, sw.cold)
		cold.stop()
		res.colds = append(res.colds, cold.took)
	}
	res.load = l.finish()
	return res
}

// pollFor polls cond every millisecond until it holds or d has passed: a
// finer waitFor, for waits that are part of a measurement.
func pollFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
	return true
}

// BenchmarkSwapUnderLoad measures hot swaps of a driver's binary under
// load: an exporter in this process serves one power instance; 16
// goroutines call its "state" through a client in a loop while the plugin
// binary is replaced on disk (alternating between builds 0.1.0 and 0.2.0)
// and Exporter.Reload swaps it, -swap.reloads times (default 20). The
// baseline is the same callers with no swap under way: before each swap
// they run for as long as the previous swap took. Reported: failed calls
// (target 0), p50/p99 of calls issued during swaps and in the steady state
// (steady-*) and their ratios (x-steady-*); p50/p99 of the Reload calls
// and of a cold start of the power plugin made after each swap under the
// same load (cold-p50-ns), and reload-x-cold-p50.
func BenchmarkSwapUnderLoad(b *testing.B) {
	sw := newSwapper(b)
	call := driverCall(sw.s.c, sw.uuid, "state")
	for range 200 {
		callOnce(b.Context(), b, "power00", call)
	}
	var res []swapResult
	for b.Loop() {
		res = append(res, sw.run(b.Context(), b, swapCallers, *swapReloads))
	}
	var (
		swaps, steady, reloads, colds []time.Duration
		failed                        int
	)
	for _, r := range res {
		swaps, steady = append(swaps, r.load.took[phaseBusy]...), append(steady, r.load.took[phaseQuiet]...)
		reloads, colds = append(reloads, r.reloads...), append(colds, r.colds...)
		failed += r.load.failed()
		if r.load.first != nil {
			b.Logf("first failed call: %v", r.load.first)
		}
	}
	s50, s99, q50, q99 := percentile(swaps, 50), percentile(swaps, 99), percentile(steady, 50), percentile(steady, 99)
	r50, c50 := percentile(reloads, 50), percentile(colds, 50)
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(ns(s50), "p50-ns")
	b.ReportMetric(ns(s99), "p99-ns")
	b.ReportMetric(ns(q50), "steady-p50-ns")
	b.ReportMetric(ns(q99), "steady-p99-ns")
	b.ReportMetric(ratio(s50, q50), "x-steady-p50")
	b.ReportMetric(ratio(s99, q99), "x-steady-p99")
	b.ReportMetric(float64(len(swaps)), "swap-calls")
	b.ReportMetric(float64(len(steady)), "steady-calls")
	b.ReportMetric(ns(r50), "reload-p50-ns")
	b.ReportMetric(ns(percentile(reloads, 99)), "reload-p99-ns")
	b.ReportMetric(ns(c50), "cold-p50-ns")
	b.ReportMetric(ratio(r50, c50), "reload-x-cold-p50")
}

// reloader rewrites the config of a served exporter of n power instances,
// toggling the config of one of them (power<n/2>), and reloads.
type reloader struct {
	s       *served
	n       int
	changed string // the uuid of the instance whose config changes
	on      bool   // its config is the changed one
}

// newReloader serves n power instances, returning how long the exporter
// took to start them.
func newReloader(tb testing.TB, n int) (*reloader, time.Duration) {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "exporter.yaml")
	powerConfig(tb, file, n, -1)
	r := &reloader{n: n}
	ready := timed(func() { r.s = serveExporter(tb, file, exporter.Options{StartTimeout: time.Minute}) })
	r.changed = r.s.uuid(tb, powerName(n/2))
	return r, ready
}

// powerName is the name powerConfig gives instance i.
func powerName(i int) string { return fmt.Sprintf("power%02d", i) }

// round changes the one instance's config and reloads, then reloads again
// with nothing changed. It fails tb unless the first reload replaced
// exactly that instance, every other process kept its pid through both,
// and the second changed nothing. It returns the two reloads' durations.
func (r *reloader) round(ctx context.Context, tb testing.TB) (changed, unchanged time.Duration) {
	tb.Helper()
	sess := r.s.e.Session()
	before := sess.Pids()
	if len(before) != r.n {
		tb.Fatalf("%d processes before the reload, want %d", len(before), r.n)
	}
	r.on = !r.on
	k := -1
	if r.on {
		k = r.n / 2
	}
	powerConfig(tb, r.s.file, r.n, k)
	changes, err := reloadTimed(ctx, r.s.e, &changed)
	if err != nil {
		tb.Fatalf("reload: %v", err)
	}
	if name := powerName(r.n / 2); len(changes) != 1 || changes[0].Path != name || changes[0].Action != "replaced" ||
		changes[0].Detail != "config changed" || changes[0].Err != nil {
		tb.Fatalf("reload changed %+v, want %s replaced (config changed)", changes, name)
	}
	after := sess.Pids()
	for id, pid := range before {
		switch {
		case id == r.changed && (after[id] == pid || after[id] == 0):
			tb.Fatalf("the changed instance's process is %d after the reload (was %d)", after[id], pid)
		case id != r.changed && after[id] != pid:
			tb.Fatalf("an unchanged instance's process changed in the reload: %d -> %d", pid, after[id])
		}
	}
	changes, err = reloadTimed(ctx, r.s.e, &unchanged)
	if err != nil || len(changes) != 0 {
		tb.Fatalf("a reload with nothing changed: %+v, %v", changes, err)
	}
	for id, pid := range sess.Pids() {
		if after[id] != pid {
			tb.Fatalf("a process changed in a reload with nothing changed: %d -> %d", after[id], pid)
		}
	}
	return changed, unchanged
}

func reloadTimed(ctx context.Context, e *exporter.Exporter, took *time.Duration) ([]exporter.Change, error) {
	start := time.Now()
	changes, err := e.Reload(ctx)
	*took = time.Since(start)
	return changes, err
}

// reloadRounds is how many rounds BenchmarkReload100 makes per iteration.
const reloadRounds = 5

// BenchmarkReload100 measures Exporter.Reload on a config of
// -reload.instances power instances (default 100, an exporter in this
// process) where one instance's config changed: the time until Reload
// returns with it replaced, and the time of a reload where nothing changed.
// It fails unless every other instance kept its process. The baseline is a
// cold start of the power plugin (host.Start and a first call), one per
// round: the least a reload that replaces an instance must take. Each
// iteration makes 5 rounds of (change, reload, reload again, cold start).
// Reported: p50 of each (changed-p50-ns, unchanged-p50-ns, cold-p50-ns),
// changed-x-cold-p50, and how long the exporter took to start all the
// instances (start-ns, once).
func BenchmarkReload100(b *testing.B) {
	ctx := b.Context()
	r, ready := newReloader(b, *reloadInstances)
	bin := powerPlugin(b)
	startPower(ctx, b, bin).stop()
	var changed, unchanged, colds []time.Duration
	for b.Loop() {
		for range reloadRounds {
			c, u := r.round(ctx, b)
			cold := startPower(ctx, b, bin)
			cold.stop()
			changed, unchanged, colds = append(changed, c), append(unchanged, u), append(colds, cold.took)
		}
	}
	c50, u50, k50 := percentile(changed, 50), percentile(unchanged, 50), percentile(colds, 50)
	b.ReportMetric(ns(c50), "changed-p50-ns")
	b.ReportMetric(ns(u50), "unchanged-p50-ns")
	b.ReportMetric(ns(k50), "cold-p50-ns")
	b.ReportMetric(ratio(c50, k50), "changed-x-cold-p50")
	b.ReportMetric(ns(ready), "start-ns")
}
