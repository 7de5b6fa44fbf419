package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// served is an exporter in the benchmark process, served on a unix socket
// as a client reaches it, with the power plugin in a plugin directory of
// its own (which the swap benchmark rewrites). It is closed, and its
// processes stopped, at the end of the test.
type served struct {
	e    *exporter.Exporter
	c    jumpstarterv1.ExporterServiceClient
	file string // the config file
	dir  string // the plugin directory
}

// serveExporter starts an exporter on the config file with options o
// (ConfigFile and PluginDirs are set here) and serves it.
func serveExporter(tb testing.TB, file string, o exporter.Options) *served {
	tb.Helper()
	dir := testbin.PluginDir(tb, "power")
	o.ConfigFile, o.PluginDirs = file, []string{dir}
	e, err := exporter.New(tb.Context(), o)
	if err != nil {
		tb.Fatalf("exporter.New: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	sock := socketPath(tb, "e.sock")
	lis, err := exporter.Listen("unix://" + sock)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, lis) }()
	tb.Cleanup(func() { cancel(); <-done })
	return &served{e: e, c: dial(tb, sock), file: file, dir: dir}
}

// uuids returns the uuid of every instance by name.
func (s *served) uuids(tb testing.TB) map[string]string {
	tb.Helper()
	r, err := s.c.GetReport(tb.Context(), &emptypb.Empty{})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range r.Reports {
		out[d.Labels[exporter.LabelName]] = d.Uuid
	}
	return out
}

// uuid returns the uuid of the instance name.
func (s *served) uuid(tb testing.TB, name string) string {
	tb.Helper()
	id, ok := s.uuids(tb)[name]
	if !ok {
		tb.Fatalf("the exporter reports no %s", name)
	}
	return id
}

// pid returns the current process of the instance uuid, 0 while it has none.
func (s *served) pid(uuid string) int { return s.e.Session().Pids()[uuid] }

// powerConfig writes an exporter config of n power instances (power00,
// power01, ...) to file; changed, when in range, gets another config than
// the others ({voltage: 12} instead of {}).
func powerConfig(tb testing.TB, file string, n, changed int) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\n")
	b.WriteString("metadata: {namespace: lab, name: bench}\nexport:\n")
	for i := range n {
		cfg := "{}"
		if i == changed {
			cfg = "{voltage: 12}"
		}
		fmt.Fprintf(&b, "  power%02d:\n    type: power\n    config: %s\n", i, cfg)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// installBinary replaces the power plugin in dir with the file at bin, as an
// installer does: written aside, then renamed over.
func installBinary(tb testing.TB, dir string, bin []byte) {
	tb.Helper()
	tmp := filepath.Join(dir, ".new")
	if err := os.WriteFile(tmp, bin, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "jumpwire-driver-power")); err != nil {
		tb.Fatal(err)
	}
}

// gone reports whether the process pid no longer exists (exited and reaped).
func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// Phases of a load run: each call is counted in the phase current when it
// was issued. Calls issued in phaseIgnore are counted only if they fail.
const (
	phaseIgnore = iota
	phaseQuiet  // the baseline: the same load with nothing else going on
	phaseBusy   // kills or swaps under way
	phaseNoise  // a diagnostic: other work under way (BenchmarkKillStorm's cold starts)
	nPhases
)

// sample is one call made by a load worker.
type sample struct {
	phase int
	took  time.Duration
	err   error
}

// load keeps workers goroutines calling call in a loop, each call bounded by
// timeout, and records every call in the phase current when it was issued.
type load struct {
	phase   atomic.Int32
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
}

// startLoad starts the workers in phaseIgnore.
func startLoad(ctx context.Context, call caller, workers int, timeout time.Duration) *load {
	l := &load{stop: make(chan struct{})}
	for range workers {
		l.wg.Go(func() {
			var mine []sample
			defer func() {
				l.mu.Lock()
				l.samples = append(l.samples, mine...)
				l.mu.Unlock()
			}()
			for {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				p := int(l.phase.Load())
				cctx, cancel := context.WithTimeout(ctx, timeout)
				start := time.Now()
				_, err := call(cctx)
				took := time.Since(start)
				cancel()
				if ctx.Err() != nil {
					return // the test is over; this call does not count
				}
				mine = append(mine, sample{phase: p, took: took, err: err})
			}
		})
	}
	return l
}

// set switches the phase that calls issued from now on count in.
func (l *load) set(phase int) { l.phase.Store(int32(phase)) }

// loadResult is what a load run saw, by phase.
type loadResult struct {
	took  [nPhases][]time.Duration // successful calls
	fails [nPhases]int
	first error // the first failure, whatever its phase
}

// failed counts the failed calls of every phase.
func (r loadResult) failed() int {
	n := 0
	for _, f := range r.fails {
		n += f
	}
	return n
}

// finish stops the workers, waits for them and sorts their calls by phase.
func (l *load) finish() loadResult {
	close(l.stop)
	l.wg.Wait()
	var r loadResult
	for _, s := range l.samples {
		if s.err != nil {
			r.fails[s.phase]++
			if r.first == nil {
				r.first = s.err
			}
			continue
		}
		r.took[s.phase] = append(r.took[s.phase], s.took)
	}
	return r
}

// ns reports a duration as a metric value in nanoseconds.
func ns(d time.Duration) float64 { return float64(d.Nanoseconds()) }

// ratio is a/b, 0 when b is.
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
