package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// descendants lists the live processes below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	for todo := []int{pid}; len(todo) > 0; {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		out = append(out, children[p]...)
		todo = append(todo, children[p]...)
	}
	return out
}

const pythonConfig = `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: py-e2e}
export:
  power:
    type: power
  pypower:
    type: jumpstarter_driver_power.driver.MockPower
    plugin: python
  shell:
    type: jumpstarter_driver_shell.driver.Shell
    config:
      methods: {hello: "echo hello $1"}
  dut:
    type: jumpstarter_driver_composite.driver.Composite
    children:
      storage:
        type: jumpstarter_driver_opendal.driver.MockStorageMux
      relay:
        type: acme-relay
        config: {host: 127.0.0.1, port: %s, channel: 1, timeout: 2s}
`

// TestPythonAndGoInOneTree: one exporter file mixing first-party Go
// drivers, upstream's Python drivers and the vendor example is one tree.
func TestPythonAndGoInOneTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module and runs Python drivers")
	}
	py := testbin.Python(t)
	mod := filepath.Join(testbin.Root(t), vendorModule)
	plugins := t.TempDir()
	goIn(t, mod, "build", "-o", filepath.Join(plugins, "jumpwire-driver-acme-relay"), "./cmd/jumpwire-driver-acme-relay")
	board := startSim(t, mod)
	_, port, _ := strings.Cut(board.addr, ":")
	cfg := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(pythonConfig, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	jw := jwBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	script := `jw tree && jw pypower on && jw dut relay on && jw --stream call shell call_method hello '{}' world`
	cmd := exec.CommandContext(ctx, jw, "shell", "-c", cfg, "--plugin-dir", plugins, "--python", py, "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(jw)+":"+os.Getenv("PATH"), "JUMPWIRE_PLUGIN_PATH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jw shell: %v\n%s", err, out)
	}
	for _, want := range []string{
		"├── power (power ",
		"├── pypower (jumpstarter_driver_power.driver.MockPower 0.9.0)",
		"├── shell (jumpstarter_driver_shell.driver.Shell 0.9.0)",
		"└── dut",
		"├── storage (jumpstarter_driver_opendal.driver.MockStorageMux 0.9.0)",
		"└── relay (acme-relay ",
		"hello world",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	waitFor(t, `the board saw "SET 1 ON"`, func() bool { return board.saw("SET 1 ON") })
}

// TestPythonPluginsListed: jw plugins shows Python classes with their
// package, version and methods, and a missing package in one line.
func TestPythonPluginsListed(t *testing.T) {
	pluginEnv(t)
	py := testbin.Python(t)
	r := jw(t, "", "plugins", "inspect", "--python", py, "jumpstarter_driver_shell.driver.Shell")
	for _, want := range []string{
		"jumpstarter_driver_shell.driver.Shell: shell driver for Jumpstarter\n",
		"  python:  " + py + "\n",
		"  package: jumpstarter-driver-shell 0.9.0\n",
		"  call_method  streaming  method string, env any, args any...",
		"  methods  object   required",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("jw plugins inspect lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = jw(t, "", "plugins", "list", "--python", py)
	if !strings.Contains(r.stdout, "jumpstarter_driver_shell.driver.Shell") || !strings.Contains(r.stdout, "jumpstarter-driver-shell") {
		t.Errorf("jw plugins list shows no Python classes:\n%s%s", r.stdout, r.stderr)
	}
	r = jw(t, "", "plugins", "inspect", "--python", py, "jumpstarter_driver_nosuch.driver.Thing")
	want := `jw: unknown driver type "jumpstarter_driver_nosuch.driver.Thing": no Go plugin provides it and ` + py +
		` cannot import it: no module named 'jumpstarter_driver_nosuch': pip install jumpstarter-driver-nosuch` + "\n"
	if r.code == 0 || r.stderr != want {
		t.Errorf("missing package: exit %d, stderr %q\nwant %q", r.code, r.stderr, want)
	}
}

// TestKilledExporterLeavesNoPython: kill -9 of `jw run` takes the Python
// zygote, its instances and what they started with it.
func TestKilledExporterLeavesNoPython(t *testing.T) {
	py := testbin.Python(t)
	jw := jwBinary(t)
	sock := filepath.Join(t.TempDir(), "e.sock")
	cfg := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: py-kill}
export:
  pypower:
    type: jumpstarter_driver_power.driver.MockPower
    plugin: python
  shell:
    type: jumpstarter_driver_shell.driver.Shell
    config: {methods: {hang: "sleep 600"}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(jw, "run", "-c", cfg, "--python", py, "--listen", "unix://"+sock)
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exporter did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	hang := exec.Command(jw, "--host", "unix://"+sock, "--stream", "call", "shell", "call_method", "hang", "{}")
	if err := hang.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hang.Process.Kill(); _ = hang.Wait() })
	var below []int
	waitFor(t, "the shell runs its command", func() bool {
		below = descendants(cmd.Process.Pid)
		for _, p := range below {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline"); strings.HasPrefix(string(b), "sleep\x00600") {
				return true
			}
		}
		return false
	})
	if len(below) < 4 { // zygote, two instances, the shell's command
		t.Fatalf("processes below the exporter: %v", below)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "everything the exporter started is gone", func() bool {
		for _, p := range below {
			if running(p) {
				return false
			}
		}
		return true
	})
}

// TestPythonExampleDriver: the example Python driver, loaded from its
// directory (PYTHONPATH), runs under jw as it runs under upstream.
func TestPythonExampleDriver(t *testing.T) {
	py := testbin.Python(t)
	dir := filepath.Join(testbin.Root(t), "examples", "python-driver")
	jw := jwBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	script := `jw lamp dim 30 && jw lamp state && printf 'hello\n' | jw pipe lamp console && jw lamp dim 150`
	cmd := exec.CommandContext(ctx, jw, "shell", "-c", filepath.Join(dir, "exporter.yaml"), "--python", py, "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(jw)+":"+os.Getenv("PATH"), "JUMPWIRE_PLUGIN_PATH=", "PYTHONPATH="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("jw shell: %v (exit %d, want 1 from dim 150)\n%s%s", err, code, out, stderr.String())
	}
	if got, want := string(out), "18\n30\nhello: 30%\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if want := "brightness 150 is not between 0 and 100"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
}

// TestUpstreamCLIOnPythonDrivers: upstream's j, inside jw shell, drives
// upstream's drivers that jumpwire hosts in Python.
func TestUpstreamCLIOnPythonDrivers(t *testing.T) {
	py := testbin.Python(t)
	j := filepath.Join(filepath.Dir(py), "j")
	if _, err := os.Stat(j); err != nil {
		t.Skipf("no upstream j next to %s: %v", py, err)
	}
	cfg := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: j-on-python}
export:
  power:
    type: jumpstarter_driver_power.driver.MockPower
    plugin: python
  shell:
    type: jumpstarter_driver_shell.driver.Shell
    config:
      methods: {hello: "echo hello $1"}
  storage:
    type: jumpstarter_driver_opendal.driver.MockStorageMux
  group:
    type: jumpstarter_driver_composite.driver.Composite
    children:
      inner:
        type: jumpstarter_driver_power.driver.MockPower
        plugin: python
`), 0o600); err != nil {
		t.Fatal(err)
	}
	jw := jwBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	script := `j power on && j power off && j shell hello world && j storage host && j storage dut && j group inner on && echo done`
	cmd := exec.CommandContext(ctx, jw, "shell", "-c", cfg, "--python", py, "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(jw)+":"+filepath.Dir(py)+":"+os.Getenv("PATH"), "JUMPWIRE_PLUGIN_PATH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jw shell -- j ...: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "hello world") || !strings.HasSuffix(strings.TrimSpace(string(out)), "done") {
		t.Errorf("output:\n%s", out)
	}
}
