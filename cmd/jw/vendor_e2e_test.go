package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// vendorModule is the example third-party driver: its own Go module, built
// against the SDK the way a vendor builds it.
const vendorModule = "examples/vendor-driver"

// goIn runs the go command in dir, a module of its own. -mod=readonly on the
// command line: the module's committed go.mod and go.sum must be enough.
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	args = slices.Insert(args, 1, "-mod=readonly")
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// raceEnabled reports whether this test binary runs with the race detector,
// so the tests it runs in other modules do too.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestVendorModuleTests vets and runs the vendor module's own tests, which
// `go vet ./...` and `go test ./...` in this module do not reach.
func TestVendorModuleTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests another module")
	}
	mod := filepath.Join(testbin.Root(t), vendorModule)
	goIn(t, mod, "vet", "./...")
	args := []string{"test", "-count=1"}
	if raceEnabled() {
		args = append(args, "-race")
	}
	goIn(t, mod, append(args, "./...")...)
}

// simBoard is a running acme-relay-sim process.
type simBoard struct {
	addr string

	mu   sync.Mutex
	seen []string
}

// startSim builds and starts the vendor module's simulated relay board.
func startSim(t *testing.T, mod string) *simBoard {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "acme-relay-sim")
	goIn(t, mod, "build", "-o", bin, "./cmd/acme-relay-sim")
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("acme-relay-sim printed nothing: %v", sc.Err())
	}
	b := &simBoard{}
	if _, err := fmt.Sscanf(sc.Text(), "listening on %s", &b.addr); err != nil {
		t.Fatalf("acme-relay-sim: first line %q: %v", sc.Text(), err)
	}
	go func() {
		for sc.Scan() {
			if cmd, ok := strings.CutPrefix(sc.Text(), "> "); ok {
				b.mu.Lock()
				b.seen = append(b.seen, cmd)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// saw reports whether the board received cmd.
func (b *simBoard) saw(cmd string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.seen, cmd)
}

// relayConfig is an exporter config with one acme-relay instance "relay"
// switching channel 1 of the board at addr.
func relayConfig(t *testing.T, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: vendor-e2e}
export:
  relay:
    type: acme-relay
    config: {host: %q, port: %s, channel: 1, timeout: 2s}
`, host, port)
	p := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVendorDriver builds the vendor module's plugin on its own, puts it in
// a plugin directory, and has `jw shell` find it through the catalog by its
// type name and call it: the simulated board sees the command.
func TestVendorDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module and runs an exporter")
	}
	mod := filepath.Join(testbin.Root(t), vendorModule)
	plugins := t.TempDir()
	goIn(t, mod, "build", "-o", filepath.Join(plugins, "jumpwire-driver-acme-relay"), "./cmd/jumpwire-driver-acme-relay")
	board := startSim(t, mod)
	jw := jwBinary(t)
	env := append(os.Environ(), "PATH="+filepath.Dir(jw)+":"+os.Getenv("PATH"), "JUMPWIRE_PLUGIN_PATH=")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("on", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, jw, "shell", "-c", relayConfig(t, board.addr), "--plugin-dir", plugins,
			"--", "sh", "-c", "jw relay on && jw relay state")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("jw shell -- jw relay on: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != "true" {
			t.Errorf("jw relay state printed %q, want true", got)
		}
		waitFor(t, `the board saw "SET 1 ON"`, func() bool { return board.saw("SET 1 ON") })
	})

	t.Run("board unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close() // nothing listens there now
		cmd := exec.CommandContext(ctx, jw, "shell", "-c", relayConfig(t, addr), "--plugin-dir", plugins,
			"--", "jw", "relay", "on")
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Fatalf("jw relay on with no board: %v, exit code %d, want 1\n%s", err, code, stderr.String())
		}
		if want := "acme board at " + addr + " is unavailable"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	})
}
