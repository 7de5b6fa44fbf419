package bench

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

var flashSize = flag.Int64("flash.size", 1<<30, "BenchmarkFlash: the image's size in bytes")

// flashImage writes an image of size bytes to dir: blocks of 512 KiB of
// random bytes and 512 KiB of zeros (gzip shrinks it to about half), and its
// gzip (fastest level). It returns both paths.
func flashImage(tb testing.TB, dir string, size int64) (raw, gz string) {
	tb.Helper()
	raw, gz = filepath.Join(dir, "image.raw"), filepath.Join(dir, "image.raw.gz")
	rf, err := os.Create(raw)
	if err != nil {
		tb.Fatal(err)
	}
	gf, err := os.Create(gz)
	if err != nil {
		tb.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(gf, gzip.BestSpeed)
	rng := rand.NewChaCha8([32]byte{1})
	block := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(block)) {
		clear(block)
		_, _ = rng.Read(block[:len(block)/2])
		n := min(int64(len(block)), size-off)
		if _, err := rf.Write(block[:n]); err != nil {
			tb.Fatal(err)
		}
		if _, err := zw.Write(block[:n]); err != nil {
			tb.Fatal(err)
		}
	}
	for _, err := range []error{rf.Close(), zw.Close(), gf.Close()} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return raw, gz
}

// flashRig is an exporter serving one flasher on a target file.
type flashRig struct {
	jw     string // the jw binary
	server *jwServer
	target string
}

func startFlashRig(ctx context.Context, tb testing.TB, targetDir string) *flashRig {
	tb.Helper()
	target := filepath.Join(targetDir, "target.img")
	cfg := writeConfig(tb, fmt.Sprintf("  flasher:\n    type: flasher\n    config: {path: %s}\n", target))
	s := runJW(ctx, tb, cfg, testbin.PluginDir(tb, "storage"), 1)
	return &flashRig{jw: testbin.Build(tb, "./cmd/jw"), server: s, target: target}
}

// flash runs `jw flash` of img and returns how long it took and the client's
// peak RSS.
//
// extra are more flags of jw flash (--stream).
func (r *flashRig) flash(ctx context.Context, tb testing.TB, img string, extra ...string) (time.Duration, int64) {
	tb.Helper()
	cmd := exec.CommandContext(ctx, r.jw, append([]string{"--host", "unix://" + r.server.sock, "flash", "flasher", img}, extra...)...)
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(begin)
	if err != nil || !strings.Contains(string(out), "sha256") {
		tb.Fatalf("jw flash %s: %v\n%s", img, err, out)
	}
	return took, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
}

// baseline runs the shell command line and returns how long it took.
func baseline(ctx context.Context, tb testing.TB, line string) time.Duration {
	tb.Helper()
	begin := time.Now()
	if out, err := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", line, err, out)
	}
	return time.Since(begin)
}

// peaks returns the peak RSS (VmHWM) of the exporter and of its plugin.
func (r *flashRig) peaks(tb testing.TB) (exporter, plugin int64) {
	tb.Helper()
	var err error
	if exporter, err = procKB(fmt.Sprintf("/proc/%d/status", r.server.pid), "VmHWM:"); err != nil {
		tb.Fatal(err)
	}
	if plugin, err = procKB(fmt.Sprintf("/proc/%d/status", r.server.plugins[0].pid), "VmHWM:"); err != nil {
		tb.Fatal(err)
	}
	return exporter, plugin
}

// TestFlashBenchmark runs BenchmarkFlash's measurements once at a small
// size: the flash completes and the baselines run; no timing is asserted.
func TestFlashBenchmark(t *testing.T) {
	smoke(t)
	dir := t.TempDir()
	raw, gz := flashImage(t, dir, 8<<20)
	rig := startFlashRig(t.Context(), t, dir)
	for _, img := range []string{raw, gz, raw} {
		var extra []string
		if img == gz {
			extra = []string{"--stream"}
		}
		if d, rss := rig.flash(t.Context(), t, img, extra...); d <= 0 || rss <= 0 {
			t.Errorf("jw flash %s: %v, peak RSS %d", img, d, rss)
		}
		if b, err := os.ReadFile(rig.target); err != nil || int64(len(b)) != 8<<20 {
			t.Fatalf("the target holds %d bytes (%v); want the 8 MiB image", len(b), err)
		}
	}
	baseline(t.Context(), t, fmt.Sprintf("cp %s %s/copy && sync %s/copy", raw, dir, dir))
	if e, p := rig.peaks(t); e <= 0 || p <= 0 {
		t.Errorf("peak RSS: exporter %d, plugin %d", e, p)
	}
}

// BenchmarkFlash writes a -flash.size image (1 GiB) with `jw flash` through
// the exporter into a flasher's image file, on tmpfs (/dev/shm) and on disk,
// raw and gzip-compressed, against `cp IMG T && sync T` and `zcat IMG.gz > T
// && sync T` to the same file system (the driver fsyncs before it answers,
// so the baselines do too; plain cp is reported as well). Each iteration
// runs jw and the baseline in alternating order. Reported: MB/s of the
// image's (decompressed) bytes, the baseline's, their ratio, and the peak
// RSS of the exporter, the plugin and the jw client. jw runs on the
// exporter's machine, so it hands the image file over (the local fast
// path); the -streamed variants give it --stream, to send the bytes.
func BenchmarkFlash(b *testing.B) {
	disk := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		b.Skip("no /dev/shm")
	}
	for _, fs := range []struct{ name, dir string }{{"tmpfs", "/dev/shm"}, {"disk", disk}} {
		b.Run(fs.name, func(b *testing.B) {
			dir, err := os.MkdirTemp(fs.dir, "jumpwire-bench-flash-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			raw, gz := flashImage(b, dir, *flashSize)
			rig := startFlashRig(b.Context(), b, dir)
			copyTo := filepath.Join(dir, "copy.img")
			cpBase := fmt.Sprintf("cp %s %s && sync %s", raw, copyTo, copyTo)
			zcatBase := fmt.Sprintf("zcat %s > %s && sync %s", gz, copyTo, copyTo)
			for _, v := range []struct {
				name, img, base string
				extra           []string
			}{
				{"raw", raw, cpBase, nil},
				{"raw-streamed", raw, cpBase, []string{"--stream"}},
				{"gzip", gz, zcatBase, nil},
				{"gzip-streamed", gz, zcatBase, []string{"--stream"}},
			} {
				b.Run(v.name, func(b *testing.B) {
					ctx := b.Context()
					var jw, base, cp []float64
					var client int64
					for i := 0; b.Loop(); i++ {
						runJ := func() {
							d, rss := rig.flash(ctx, b, v.img, v.extra...)
							jw, client = append(jw, mbps(*flashSize, d)), max(client, rss)
						}
						runB := func() { base = append(base, mbps(*flashSize, baseline(ctx, b, v.base))) }
						if i%2 == 0 {
							runJ()
							runB()
						} else {
							runB()
							runJ()
						}
						if v.img == raw {
							cp = append(cp, mbps(*flashSize, baseline(ctx, b, fmt.Sprintf("cp %s %s", raw, copyTo))))
						}
					}
					mj, mb := medianFloat(jw), medianFloat(base)
					b.ReportMetric(mj, "MB/s")
					b.ReportMetric(mb, "base-MB/s")
					b.ReportMetric(mj/mb, "x-base")
					if len(cp) > 0 {
						b.ReportMetric(medianFloat(cp), "cp-nosync-MB/s")
					}
					e, p := rig.peaks(b)
					b.ReportMetric(float64(e)/mib, "exporter-peak-MiB")
					b.ReportMetric(float64(p)/mib, "plugin-peak-MiB")
					b.ReportMetric(float64(client)/mib, "client-peak-MiB")
				})
			}
		})
	}
}
