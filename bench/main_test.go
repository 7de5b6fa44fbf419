package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// smokeEnv, set to 1, runs the benchmarks' smoke tests: each measurement
// once at tiny scale. `make bench-smoke` (run by CI) sets it; `make test`
// leaves them out, as they take most of a minute on a small machine.
const smokeEnv = "JUMPWIRE_BENCH_SMOKE"

// smoke skips t unless $JUMPWIRE_BENCH_SMOKE is 1.
func smoke(t *testing.T) {
	t.Helper()
	if os.Getenv(smokeEnv) != "1" {
		t.Skipf("a benchmark smoke test: run with %s=1 (make bench-smoke)", smokeEnv)
	}
}

// barePlugin builds the baseline plugin binary.
func barePlugin(tb testing.TB) string {
	tb.Helper()
	return testbin.Build(tb, "./bench/internal/bareplugin/cmd/jumpwire-bench-bareplugin")
}

// powerPlugin builds the power driver's plugin binary.
func powerPlugin(tb testing.TB) string {
	tb.Helper()
	return testbin.Build(tb, "./drivers/power/cmd/jumpwire-driver-power")
}

// exporterConfig writes an exporter config serving n mock power switches
// (power00, power01, ...) and returns its path.
func exporterConfig(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\n")
	b.WriteString("metadata: {namespace: lab, name: bench}\nexport:\n")
	for i := range n {
		fmt.Fprintf(&b, "  power%02d:\n    type: power\n    config: {}\n", i)
	}
	p := filepath.Join(tb.TempDir(), "exporter.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// socketPath returns a fresh unix socket path, short enough for the 108-byte
// limit on sun_path whatever TMPDIR is.
func socketPath(tb testing.TB, name string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "jwb")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

// timed runs fn and returns how long it took.
func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

// waitFor polls cond every 20ms until it holds or d has passed.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
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
