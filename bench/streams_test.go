package bench

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// This file holds what the byte-stream benchmarks share: exporter configs
// and plugin directories for the sink driver, an exporter in this process
// or as a `jw run` subprocess, and clients of either.

// sinkPluginDir builds the benchmarks' sink driver (bench/internal/sinkdriver)
// into a fresh plugin directory holding only it.
func sinkPluginDir(tb testing.TB) string {
	tb.Helper()
	bin := testbin.Build(tb, "./bench/internal/sinkdriver/cmd/jumpwire-driver-sink")
	dir := tb.TempDir()
	if err := os.Link(bin, filepath.Join(dir, filepath.Base(bin))); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// writeConfig writes an exporter config whose export section is export
// (YAML, indented by two spaces) and returns its path.
func writeConfig(tb testing.TB, export string) string {
	tb.Helper()
	cfg := "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\n" +
		"metadata: {namespace: lab, name: bench}\nexport:\n" + export
	p := filepath.Join(tb.TempDir(), "exporter.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// serveInProcess starts an exporter in this process on config cfg with the
// plugins of pluginDir, serving on a fresh unix socket, and returns the
// socket's path. Everything stops at the end of the test.
func serveInProcess(tb testing.TB, cfg, pluginDir string) string {
	tb.Helper()
	e, err := exporter.New(tb.Context(), exporter.Options{ConfigFile: cfg, PluginDirs: []string{pluginDir}})
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
	return sock
}

// dialDriver connects a client to the exporter on sock and looks up the
// driver at path. The client is closed at the end of the test.
func dialDriver(ctx context.Context, tb testing.TB, sock, path string) (*client.Client, *client.Driver) {
	tb.Helper()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	tree, err := c.Tree(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := tree.Lookup(path)
	if err != nil {
		tb.Fatal(err)
	}
	return c, d
}

// jwServer is a `jw run` subprocess and the socket it serves on.
type jwServer struct {
	*jwRun
	sock string
}

// runJW runs `jw run` as a subprocess on config cfg with the plugins of
// pluginDir, and any further flags, and waits until it serves with nPlugins
// plugin processes. It is stopped by Stop or at the end of the test.
func runJW(ctx context.Context, tb testing.TB, cfg, pluginDir string, nPlugins int, flags ...string) *jwServer {
	tb.Helper()
	jw := testbin.Build(tb, "./cmd/jw")
	logs, err := os.Create(filepath.Join(tb.TempDir(), "jw.log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	sock := socketPath(tb, "jw.sock")
	cmd := exec.Command(jw, append([]string{"run", "-c", cfg, "--listen", "unix://" + sock,
		"--plugin-dir", pluginDir, "--log-level", "warn"}, flags...)...)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r := &jwRun{pid: cmd.Process.Pid}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.Stop = sync.OnceFunc(func() { r.stop(cmd, exited) })
	tb.Cleanup(r.Stop)

	select {
	case <-servingLine(stdout):
		r.ready = time.Since(begin)
	case <-exited:
		b, _ := os.ReadFile(logs.Name())
		tb.Fatalf("jw run exited before serving:\n%s", b)
	case <-time.After(60 * time.Second):
		b, _ := os.ReadFile(logs.Name())
		tb.Fatalf("jw run did not serve within a minute:\n%s", b)
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	if !waitFor(ctx, 5*time.Second, func() bool { r.plugins = children(r.pid); return len(r.plugins) == nPlugins }) {
		tb.Fatalf("jw run serves with %d plugin processes, want %d", len(r.plugins), nPlugins)
	}
	return &jwServer{jwRun: r, sock: sock}
}

// servingLine reads a server's stdout and returns a channel closed once it
// prints its "serving on" line; the rest of its output is discarded.
func servingLine(stdout io.Reader) <-chan struct{} {
	serving := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if strings.Contains(s.Text(), "serving on") {
				close(serving)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return serving
}

// mbps is a throughput in MB/s (10^6 bytes per second, as go test counts).
func mbps(bytes int64, d time.Duration) float64 {
	return float64(bytes) / 1e6 / d.Seconds()
}

// medianFloat returns the median of vs (sorted in place).
func medianFloat(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}
