package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// A driver package as a vendor ships it: the version is both the
// distribution's and what release() answers.
const swapDriver = `from jumpstarter.driver import Driver, export
from pydantic.dataclasses import dataclass


@dataclass(kw_only=True)
class Lamp(Driver):
    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_composite.client.CompositeClient"

    @export
    def release(self) -> str:
        return "%s"
`

// writeWheel writes the wheel of swap-lamp at version into dir, as a build
// backend would (a zip of the package and its dist-info, every file hashed
// in RECORD), and returns its path.
func writeWheel(t *testing.T, dir, version string) string {
	t.Helper()
	info := "swap_lamp-" + version + ".dist-info/"
	files := []struct{ name, text string }{
		{"swap_lamp/__init__.py", ""},
		{"swap_lamp/driver.py", fmt.Sprintf(swapDriver, version)},
		{info + "METADATA", "Metadata-Version: 2.1\nName: swap-lamp\nVersion: " + version + "\nRequires-Dist: jumpstarter>=0.9.0\n"},
		{info + "WHEEL", "Wheel-Version: 1.0\nGenerator: jumpwire-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	path := filepath.Join(dir, "swap_lamp-"+version+"-py3-none-any.whl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	var record strings.Builder
	for _, file := range files {
		w, err := zw.Create(file.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, file.text); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(file.text))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", file.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(file.text))
	}
	record.WriteString(info + "RECORD,,\n")
	w, err := zw.Create(info + "RECORD")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, record.String()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPythonPipUpgradeHotSwap: a driver package upgraded with pip install -U
// under a running exporter is served at its new version after jw reload,
// while a client calls it in a loop without one failed call.
func TestPythonPipUpgradeHotSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wheels and a virtual environment")
	}
	py := testbin.Python(t)
	work := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// Two versions of the package, as wheels in a local index.
	wheels := filepath.Join(work, "wheels")
	if err := os.Mkdir(wheels, 0o755); err != nil {
		t.Fatal(err)
	}
	writeWheel(t, wheels, "1.0.0")
	writeWheel(t, wheels, "2.0.0")

	// A throwaway environment for the package, that sees the project's
	// environment (grpcio, upstream jumpstarter, the plugin host) behind
	// its own site-packages.
	venv := filepath.Join(work, "venv")
	run(py, "-m", "venv", "--without-pip", venv)
	vpy := filepath.Join(venv, "bin", "python")
	purelib := `import sysconfig; print(sysconfig.get_paths()["purelib"])`
	project, own := run(py, "-c", purelib), run(vpy, "-c", purelib)
	pth := fmt.Sprintf("import site; site.addsitedir(%q)\n", project)
	if err := os.WriteFile(filepath.Join(own, "project-env.pth"), []byte(pth), 0o644); err != nil {
		t.Fatal(err)
	}
	pip := func(args ...string) {
		run(py, append([]string{"-m", "pip", "--python", vpy, "install", "--quiet", "--no-index", "--no-deps", "--find-links", wheels}, args...)...)
	}
	pip("swap-lamp==1.0.0")

	cfg := filepath.Join(work, "exporter.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: py-upgrade}
export:
  lamp:
    type: swap_lamp.driver.Lamp
`), 0o600); err != nil {
		t.Fatal(err)
	}
	jw := jwBinary(t)
	sock := filepath.Join(work, "e.sock")
	env := append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=", "XDG_CACHE_HOME="+filepath.Join(work, "cache"))
	cmd := exec.Command(jw, "run", "-c", cfg, "--python", venv, "--listen", "unix://"+sock)
	cmd.Env = env
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the exporter did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := client.Dial(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lamp := func() *client.Driver {
		t.Helper()
		tree, err := c.Tree(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d, err := tree.Lookup("lamp")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	uuid := lamp().UUID
	if v := lamp().Labels["jumpwire.dev/version"]; v != "1.0.0" {
		t.Fatalf("version label %q before the upgrade, want 1.0.0", v)
	}

	// A client calls the lamp in a loop throughout.
	var (
		mu       sync.Mutex
		failures []error
		seen     = map[any]int{}
		calls    int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			v, err := c.Call(ctx, uuid, "release")
			mu.Lock()
			calls++
			if err != nil {
				failures = append(failures, err)
			} else {
				seen[v]++
			}
			mu.Unlock()
		}
	})
	served := func(v string) bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[v] > 0
	}
	waitFor(t, "the loop's calls are answered", func() bool { return served("1.0.0") })

	pip("-U", "swap-lamp")
	reload := exec.Command(jw, "--host", "unix://"+sock, "reload")
	reload.Env = env
	out, err := reload.CombinedOutput()
	if err != nil {
		t.Fatalf("jw reload: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "lamp") || !strings.Contains(string(out), "1.0.0 -> 2.0.0") {
		t.Errorf("jw reload said:\n%s", out)
	}
	waitFor(t, "the new version serves", func() bool { return served("2.0.0") })
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed across the upgrade, first: %v", len(failures), calls, failures[0])
	}
	if v := lamp().Labels["jumpwire.dev/version"]; v != "2.0.0" {
		t.Errorf("version label %q after the upgrade, want 2.0.0", v)
	}
	if v, err := c.Call(ctx, uuid, "release"); err != nil || v != "2.0.0" {
		t.Errorf("release after the upgrade = %v, %v", v, err)
	}
	t.Logf("%d calls across the upgrade: %v", calls, seen)
}
