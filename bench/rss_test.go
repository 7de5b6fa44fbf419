package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// mib is the unit the memory metrics are reported in.
const mib = 1 << 20

// rss returns the resident set size (VmRSS) of process pid in bytes.
func rss(pid int) (int64, error) { return procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:") }

// pss returns the proportional set size of process pid in bytes: its
// resident memory with each page shared with other processes (the text of a
// binary many plugins run) divided among them, so PSS adds up where RSS
// counts shared pages once per process.
func pss(pid int) (int64, error) { return procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:") }

// procKB reads the "key: N kB" line of a /proc file, in bytes.
func procKB(file, key string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s has no %s", file, key)
}

// idleRSS waits for the processes pids to settle (their summed VmRSS moves
// by less than 1% over 100ms, or 3s have passed) and returns each one's RSS.
func idleRSS(ctx context.Context, tb testing.TB, pids ...int) []int64 {
	tb.Helper()
	sample := func() ([]int64, int64) {
		var (
			each []int64
			sum  int64
		)
		for _, pid := range pids {
			r, err := rss(pid)
			if err != nil {
				tb.Fatalf("rss of %d: %v", pid, err)
			}
			each, sum = append(each, r), sum+r
		}
		return each, sum
	}
	each, last := sample()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		var sum int64
		each, sum = sample()
		if d := sum - last; d*100 < sum && -d*100 < sum {
			break
		}
		last = sum
	}
	return each
}

// proc identifies a process across pid reuse: its pid and start time.
type proc struct {
	pid   int
	start string
}

// stat returns the parent pid and the start time of process pid.
func stat(pid int) (ppid int, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// Fields after "(comm)": state ppid pgrp ... starttime is the 20th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], true
}

// children lists the live child processes of pid.
func children(pid int) []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, start, ok := stat(c); ok && ppid == pid {
			out = append(out, proc{c, start})
		}
	}
	return out
}

// jwRun is a `jw run` exporter process.
type jwRun struct {
	pid     int
	plugins []proc        // its plugin processes
	ready   time.Duration // from exec to serving, every plugin configured
	// Stop stops the exporter and its plugins; it is idempotent.
	Stop func()
}

// runExporter runs `jw run` as a subprocess on a config of n power
// instances and waits until it serves with its n plugin processes. It is
// stopped by Stop or at the end of the test.
func runExporter(ctx context.Context, tb testing.TB, n int) *jwRun {
	tb.Helper()
	return runJW(ctx, tb, exporterConfig(tb, n), testbin.PluginDir(tb, "power"), n).jwRun
}

// stop stops the exporter gracefully (SIGTERM, then SIGKILL after 10s) and
// kills any of its plugin processes still running after it.
func (r *jwRun) stop(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	for _, p := range r.plugins {
		if _, start, ok := stat(p.pid); ok && start == p.start {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

// exporterMemory is what measureExporter finds.
type exporterMemory struct {
	exporter, plugins int64         // VmRSS of the exporter, summed VmRSS of its plugins
	pss               int64         // summed PSS of the exporter and its plugins
	ready             time.Duration // from exec to serving
}

// measureExporter runs `jw run` with n power instances and returns its idle
// memory and how long it took to serve.
func measureExporter(ctx context.Context, tb testing.TB, n int) exporterMemory {
	tb.Helper()
	r := runExporter(ctx, tb, n)
	defer r.Stop()
	pids := []int{r.pid}
	for _, p := range r.plugins {
		pids = append(pids, p.pid)
	}
	each := idleRSS(ctx, tb, pids...)
	m := exporterMemory{exporter: each[0], ready: r.ready}
	for _, v := range each[1:] {
		m.plugins += v
	}
	for _, pid := range pids {
		v, err := pss(pid)
		if err != nil {
			tb.Fatalf("pss of %d: %v", pid, err)
		}
		m.pss += v
	}
	return m
}

// median returns the median of vs (sorted in place).
func median(vs []int64) int64 {
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// BenchmarkIdleRSS measures resident memory (VmRSS, in MiB) once processes
// have settled after starting.
//
// plugin: one power plugin process started as the exporter starts it and
// called once (plugin-MiB), against the bare go-plugin plugin after one call
// (bare-MiB), and the ratio (x-bare).
//
// exporter20: `jw run` serving 20 power instances, as a subprocess: the
// exporter process (exporter-MiB), its 20 plugin processes summed
// (plugins-MiB), both (total-MiB), per instance (per-instance-MiB), the
// PSS of all 21 (total-PSS-MiB: shared pages such as the plugin binary's
// text counted once), and how long jw run took from exec to serving
// (ready-ns). ns/op includes starting,
// settling and stopping everything.
func BenchmarkIdleRSS(b *testing.B) {
	b.Run("plugin", func(b *testing.B) {
		power, bare := powerPlugin(b), barePlugin(b)
		ctx := b.Context()
		var jws, bares []int64
		for b.Loop() {
			j, p := startPower(ctx, b, power), startBare(ctx, b, bare)
			r := idleRSS(ctx, b, j.pid, p.pid)
			j.stop()
			p.stop()
			jws, bares = append(jws, r[0]), append(bares, r[1])
		}
		mj, mb := median(jws), median(bares)
		b.ReportMetric(float64(mj)/mib, "plugin-MiB")
		b.ReportMetric(float64(mb)/mib, "bare-MiB")
		b.ReportMetric(float64(mj)/float64(mb), "x-bare")
	})
	b.Run("exporter20", func(b *testing.B) {
		const n = 20
		ctx := b.Context()
		var exps, plugins, psss []int64
		var readies []time.Duration
		for b.Loop() {
			m := measureExporter(ctx, b, n)
			exps, plugins, psss = append(exps, m.exporter), append(plugins, m.plugins), append(psss, m.pss)
			readies = append(readies, m.ready)
		}
		me, mp := median(exps), median(plugins)
		b.ReportMetric(float64(me)/mib, "exporter-MiB")
		b.ReportMetric(float64(mp)/mib, "plugins-MiB")
		b.ReportMetric(float64(me+mp)/mib, "total-MiB")
		b.ReportMetric(float64(me+mp)/n/mib, "per-instance-MiB")
		b.ReportMetric(float64(median(psss))/mib, "total-PSS-MiB")
		b.ReportMetric(float64(percentile(readies, 50).Nanoseconds()), "ready-ns")
	})
}
