// Package testbin builds the repository's binaries for tests that run them
// as real subprocesses (plugins, the jw CLI). Each binary is built once per
// test process, into a directory removed by Cleanup; when $JUMPWIRE_TESTBIN_DIR
// names a directory (as `make test` does, fresh for each run), once for all
// the test processes sharing it.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{}
	root  string
)

// Root returns the repository root (the directory of go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if root != "" {
		return root
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		tb.Fatalf("testbin: go env GOMOD: %v", err)
	}
	root = filepath.Dir(strings.TrimSpace(string(out)))
	return root
}

// Build builds the main package pkg (relative to the repository root, e.g.
// "./drivers/power/cmd/jumpwire-driver-power") and returns the binary's
// path, named after the package's last element. Extra go build flags may
// follow.
func Build(tb testing.TB, pkg string, flags ...string) string {
	tb.Helper()
	r := Root(tb)
	key := pkg + " " + strings.Join(flags, " ")
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[key]; ok {
		return p
	}
	if shared := os.Getenv(SharedDirEnv); shared != "" {
		p, err := buildShared(shared, r, pkg, flags)
		if err != nil {
			tb.Fatalf("testbin: %v", err)
		}
		built[key] = p
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "jumpwire-testbin-")
		if err != nil {
			tb.Fatalf("testbin: %v", err)
		}
		dir = d
	}
	out := filepath.Join(dir, fmt.Sprintf("%d", len(built)), filepath.Base(pkg))
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = r
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("testbin: go build %s: %v\n%s", pkg, err, b)
	}
	built[key] = out
	return out
}

// SharedDirEnv names the environment variable of a directory in which the
// test processes of one run share what they build. Its binaries are never
// rebuilt: give each run a fresh one.
const SharedDirEnv = "JUMPWIRE_TESTBIN_DIR"

// buildShared builds pkg into dir unless another test process has, under a
// lock on dir so that concurrent packages build it once.
func buildShared(dir, root, pkg string, flags []string) (string, error) {
	name := strings.NewReplacer("/", "_", ".", "_", " ", "_", "=", "_").Replace(strings.TrimPrefix(pkg, "./") + " " + strings.Join(flags, " "))
	out := filepath.Join(dir, name, filepath.Base(pkg))
	lock, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tmp := out + ".tmp"
	cmd := exec.Command("go", append(append([]string{"build", "-o", tmp}, flags...), pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, os.Rename(tmp, out)
}

// PluginDir builds the given driver commands (by name: "power" builds
// ./drivers/power/cmd/jumpwire-driver-power) into one fresh directory, as a
// plugin search path holding exactly those plugins.
func PluginDir(tb testing.TB, drivers ...string) string {
	tb.Helper()
	d := tb.TempDir()
	for _, name := range drivers {
		bin := Build(tb, "./drivers/"+name+"/cmd/jumpwire-driver-"+name)
		if err := os.Link(bin, filepath.Join(d, filepath.Base(bin))); err != nil {
			tb.Fatalf("testbin: %v", err)
		}
	}
	return d
}

// Cleanup removes the built binaries; call it at the end of TestMain.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// Main runs a package's tests hermetically and cleans up after them: the
// plugin catalog's cache goes to a temporary directory instead of the
// user's ~/.cache, and the built binaries are removed at the end. Call it
// from TestMain: func TestMain(m *testing.M) { testbin.Main(m) }.
func Main(m *testing.M) {
	tmp, err := os.MkdirTemp("", "jumpwire-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		os.Exit(2)
	}
	// Go's build cache defaults to a directory under XDG_CACHE_HOME: keep
	// the real one, or every binary the tests build starts cold.
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
			os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
		}
	}
	os.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	code := m.Run()
	Cleanup()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// MainCheckingLeaks runs a package's tests and then fails the run when a
// goroutine running code of the package pkg (an import path) outlives
// them: every stream, pump and copy must end with what it serves. It waits
// up to two seconds for them to finish. Call it from TestMain.
func MainCheckingLeaks(m *testing.M, pkg string) {
	code := m.Run()
	if code == 0 {
		if leaked := goroutinesOf(pkg+".", 2*time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of %s left after the tests:\n%s\n", pkg, leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// goroutinesOf waits up to wait for the goroutines running code whose
// symbols start with prefix to end, and returns the stacks of those left.
func goroutinesOf(prefix string, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, prefix) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || !time.Now().Before(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RequirePythonEnv names the variable that, set (make test sets it), makes
// tests that need the project's Python environment fail without it instead
// of skipping.
const RequirePythonEnv = "JUMPWIRE_REQUIRE_PYTHON"

// Python returns the interpreter of the project's virtual environment
// (.venv at the repository root, made by `make venv`), which has the Python
// plugin host and the pinned upstream driver packages. Without it the test
// is skipped, or fails when $JUMPWIRE_REQUIRE_PYTHON is set.
func Python(tb testing.TB) string {
	tb.Helper()
	py := filepath.Join(Root(tb), ".venv", "bin", "python")
	err := exec.Command(py, "-c", "import jumpwire_pyhost, jumpstarter_driver_shell").Run()
	if err == nil {
		return py
	}
	msg := fmt.Sprintf("testbin: %s cannot import the Python plugin host and the upstream drivers (%v): run make venv", py, err)
	if os.Getenv(RequirePythonEnv) != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}
