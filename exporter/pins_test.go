package exporter_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	powerPkg   = "./drivers/power/cmd/jumpwire-driver-power"
	networkPkg = "./drivers/network/cmd/jumpwire-driver-network"
)

// pluginEnvDirs points the plugin cache and the runtime directory (where the
// exporter keeps its copies of the binaries) at fresh directories.
func pluginEnvDirs(t *testing.T) (runtime string) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	runtime = t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	t.Setenv("JUMPWIRE_PLUGIN_PATH", "")
	return filepath.Join(runtime, "jumpwire")
}

// writeBinary writes a copy of the binary src at dst (overwriting dst in place).
func writeBinary(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// servePluginDirs starts an exporter on yaml with the given plugin directories
// and returns it and a client of its socket.
func servePluginDirs(t *testing.T, yaml string, dirs ...string) (*exporter.Exporter, jumpstarterv1.ExporterServiceClient) {
	t.Helper()
	e, err := exporter.New(t.Context(), exporter.Options{ConfigFile: writeConfig(t, yaml), PluginDirs: dirs})
	if err != nil {
		t.Fatalf("exporter.New: %v", err)
	}
	lis, err := exporter.Listen("unix://" + filepath.Join(t.TempDir(), "e.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		_ = e.Close(context.Background())
	})
	return e, jumpstarterv1.NewExporterServiceClient(conn)
}

// TestTamperedBinaryRefused: an instance pinned to a binary's sha256 runs
// it; once the file holds another binary, the exporter refuses to start and
// says which hash it found and which the config pins.
func TestTamperedBinaryRefused(t *testing.T) {
	pluginEnvDirs(t)
	bin := filepath.Join(t.TempDir(), "jumpwire-driver-power")
	writeBinary(t, testbin.Build(t, powerPkg), bin)
	pinned := sha256Of(t, bin)
	file := writeConfig(t, header+"export:\n  power:\n    type: power\n    plugin: "+bin+"\n    sha256: "+pinned+"\n")
	opts := exporter.Options{ConfigFile: file, PluginDirs: []string{t.TempDir()}}

	e, err := exporter.New(t.Context(), opts)
	if err != nil {
		t.Fatalf("the pinned binary: %v", err)
	}
	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	writeBinary(t, testbin.Build(t, networkPkg), bin)
	_, err = exporter.New(t.Context(), opts)
	want := file + ":8:5: export.power.sha256: plugin " + bin + " has sha256 " + sha256Of(t, bin) + ", the config pins " + pinned
	if err == nil || err.Error() != want {
		t.Errorf("tampered binary:\n got %v\nwant %s", err, want)
	}
}

// TestPinnedAmongDuplicates: two builds of the power plugin on the search
// path: an instance without pins gets the newer, pinned ones the one pinned.
func TestPinnedAmongDuplicates(t *testing.T) {
	pluginEnvDirs(t)
	d1, d2 := t.TempDir(), t.TempDir()
	writeBinary(t, testbin.Build(t, powerPkg, "-ldflags=-X main.version=0.1.0"), filepath.Join(d1, "jumpwire-driver-power"))
	writeBinary(t, testbin.Build(t, powerPkg, "-ldflags=-X main.version=0.2.0"), filepath.Join(d2, "jumpwire-driver-power"))
	old := sha256Of(t, filepath.Join(d1, "jumpwire-driver-power"))
	_, c := servePluginDirs(t, header+`export:
  newest: {type: power}
  byversion: {type: power, version: v0.1.0}
  byhash: {type: power, sha256: `+old+`}
`, d1, d2)
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range r.Reports[1:] {
		got[d.Labels["jumpstarter.dev/name"]] = d.Labels["jumpwire.dev/version"]
	}
	if got["newest"] != "0.2.0" || got["byversion"] != "0.1.0" || got["byhash"] != "0.1.0" {
		t.Errorf("versions run: %v", got)
	}

	file := writeConfig(t, header+"export:\n  power: {type: power, version: 0.3.0}\n")
	_, err = exporter.New(t.Context(), exporter.Options{ConfigFile: file, PluginDirs: []string{d1, d2}})
	want := file + `:5:24: export.power.version: no plugin providing "power" has version 0.3.0, which the config pins: ` +
		filepath.Join(d2, "jumpwire-driver-power") + " has version 0.2.0; " + filepath.Join(d1, "jumpwire-driver-power") + " has version 0.1.0"
	if err == nil || err.Error() != want {
		t.Errorf("version nothing has:\n got %v\nwant %s", err, want)
	}
}

// TestRunningCopyImmune: the exporter runs its own copy of a binary; once
// the original file is replaced, a driver restarted after a crash still
// runs the copy, with the same content, and Close removes the copy.
func TestRunningCopyImmune(t *testing.T) {
	runtime := pluginEnvDirs(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "jumpwire-driver-power")
	writeBinary(t, testbin.Build(t, powerPkg), bin)
	sum := sha256Of(t, bin)
	e, c := servePluginDirs(t, header+"export:\n  power: {type: power}\n", dir)
	power := uuidOf(t, c, "power")
	pid := e.Session().Pids()[power]
	exe := procExe(t, pid)
	if exe == bin || !strings.HasPrefix(exe, runtime+"/") || sha256Of(t, exe) != sum {
		t.Fatalf("plugin runs %s (sha256 %s); want a private copy under %s of %s (%s)", exe, sha256Of(t, exe), runtime, bin, sum)
	}

	// Replace the original in place (it would be "text file busy" if a
	// plugin ran it), then crash the plugin.
	writeBinary(t, testbin.Build(t, networkPkg), bin)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, c, power, "on"); err != nil { // waits for the restart
		t.Fatalf("call after the crash: %v", err)
	}
	next := e.Session().Pids()[power]
	if next == pid || next == 0 {
		t.Fatalf("pid after the restart %d (was %d)", next, pid)
	}
	if got := procExe(t, next); got != exe || sha256Of(t, "/proc/"+strconv.Itoa(next)+"/exe") != sum {
		t.Errorf("restarted plugin runs %s, want %s with sha256 %s", got, exe, sum)
	}

	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(exe)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the private copy outlived Close: %v", err)
	}
}

// procExe is the executable a process runs.
func procExe(t *testing.T, pid int) string {
	t.Helper()
	p, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return p
}
