package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// startDumpRig is an exporter serving one flasher whose device is img.
func startDumpRig(ctx context.Context, tb testing.TB, img string) *flashRig {
	tb.Helper()
	cfg := writeConfig(tb, fmt.Sprintf("  flasher:\n    type: flasher\n    config: {path: %s, state: %s}\n", img, img+".state"))
	s := runJW(ctx, tb, cfg, testbin.PluginDir(tb, "storage"), 1)
	return &flashRig{jw: testbin.Build(tb, "./cmd/jw"), server: s, target: img}
}

// dump runs `jw dump` of the flasher into out (replacing it) and returns how
// long it took and the client's peak RSS.
func (r *flashRig) dump(ctx context.Context, tb testing.TB, out string) (time.Duration, int64) {
	tb.Helper()
	cmd := exec.CommandContext(ctx, r.jw, "--host", "unix://"+r.server.sock, "dump", "--force", "flasher", out)
	begin := time.Now()
	b, err := cmd.CombinedOutput()
	took := time.Since(begin)
	if err != nil || !strings.Contains(string(b), "sha256") {
		tb.Fatalf("jw dump %s: %v\n%s", out, err, b)
	}
	return took, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
}

// TestDumpBenchmark runs BenchmarkDump's measurement once at a small size:
// the dump completes whole and the baseline runs; no timing is asserted.
func TestDumpBenchmark(t *testing.T) {
	smoke(t)
	dir := t.TempDir()
	raw, _ := flashImage(t, dir, 8<<20)
	rig := startDumpRig(t.Context(), t, raw)
	out := filepath.Join(dir, "out.img")
	if d, rss := rig.dump(t.Context(), t, out); d <= 0 || rss <= 0 {
		t.Errorf("jw dump: %v, peak RSS %d", d, rss)
	}
	want, _ := os.ReadFile(raw)
	if got, err := os.ReadFile(out); err != nil || string(got) != string(want) {
		t.Fatalf("the dump holds %d bytes (%v); want the 8 MiB image", len(got), err)
	}
	baseline(t.Context(), t, fmt.Sprintf("cp %s %s/copy && sync %s/copy", raw, dir, dir))
}

// BenchmarkDump reads a -flash.size device (1 GiB image file on tmpfs) with
// `jw dump` through the exporter from a flasher into a file on the same
// tmpfs, against `cp IMG OUT && sync OUT` (jw dump fsyncs its file before
// it renames it). jw and the baseline alternate. Reported: MB/s, the
// baseline's, their ratio, and the peak RSS of the exporter, the plugin and
// the jw client.
func BenchmarkDump(b *testing.B) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		b.Skip("no /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "jumpwire-bench-dump-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	raw, gz := flashImage(b, dir, *flashSize)
	_ = os.Remove(gz)
	rig := startDumpRig(b.Context(), b, raw)
	out, copyTo := filepath.Join(dir, "out.img"), filepath.Join(dir, "copy.img")
	ctx := b.Context()
	var jw, base []float64
	var client int64
	for i := 0; b.Loop(); i++ {
		runJ := func() {
			d, rss := rig.dump(ctx, b, out)
			jw, client = append(jw, mbps(*flashSize, d)), max(client, rss)
			_ = os.Remove(out)
		}
		runB := func() {
			base = append(base, mbps(*flashSize, baseline(ctx, b, fmt.Sprintf("cp %s %s && sync %s", raw, copyTo, copyTo))))
			_ = os.Remove(copyTo)
		}
		if i%2 == 0 {
			runJ()
			runB()
		} else {
			runB()
			runJ()
		}
	}
	mj, mb := medianFloat(jw), medianFloat(base)
	b.ReportMetric(mj, "MB/s")
	b.ReportMetric(mb, "base-MB/s")
	b.ReportMetric(mj/mb, "x-base")
	e, p := rig.peaks(b)
	b.ReportMetric(float64(e)/mib, "exporter-peak-MiB")
	b.ReportMetric(float64(p)/mib, "plugin-peak-MiB")
	b.ReportMetric(float64(client)/mib, "client-peak-MiB")
}
