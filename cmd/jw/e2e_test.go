package main

import (
	"bufio"
	"context"
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

// jwBinary builds jw and the power plugin into one directory, laid out as
// `make build` does (plugins/ next to jw), with the plugins built from the
// extra packages too (each named jumpwire-driver-<last element>).
func jwBinary(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	layout := map[string]string{
		"jw":                            "./cmd/jw",
		"plugins/jumpwire-driver-power": "./drivers/power/cmd/jumpwire-driver-power",
	}
	for _, pkg := range extra {
		layout["plugins/jumpwire-driver-"+filepath.Base(pkg)] = pkg
	}
	for bin, pkg := range layout {
		dst := filepath.Join(dir, bin)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(testbin.Build(t, pkg), dst); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "jw")
}

// pluginPids lists the running jumpwire-driver-* processes whose parent is ppid.
func pluginPids(t *testing.T, ppid int) []int {
	t.Helper()
	out, _ := exec.Command("ps", "-e", "-o", "pid=,ppid=,stat=,args=").Output()
	var pids []int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.Contains(f[3], "jumpwire-driver-") || strings.HasPrefix(f[2], "Z") {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		parent, _ := strconv.Atoi(f[1])
		if ppid == 0 || parent == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const e2eConfig = `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: e2e}
export:
  power: {type: power}
  dut:
    children:
      power: {type: jumpstarter_driver_power.driver.MockPower}
`

func writeE2EConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(p, []byte(e2eConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKilledExporterLeavesNoPlugins: kill -9 of `jw run` takes its plugin
// processes with it.
func TestKilledExporterLeavesNoPlugins(t *testing.T) {
	jw := jwBinary(t)
	sock := filepath.Join(t.TempDir(), "e.sock")
	cmd := exec.Command(jw, "run", "-c", writeE2EConfig(t), "--listen", "unix://"+sock)
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var plugins []int
	waitFor(t, "the exporter runs its two plugins", func() bool {
		plugins = pluginPids(t, cmd.Process.Pid)
		_, err := os.Stat(sock)
		return len(plugins) == 2 && err == nil
	})
	out, err := exec.Command(jw, "--host", "unix://"+sock, "power", "on").CombinedOutput()
	if err != nil {
		t.Fatalf("jw power on: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "the killed exporter's plugins are gone", func() bool {
		for _, p := range plugins {
			if running(p) {
				return false
			}
		}
		return true
	})
}

// TestShellRunsOneCommand: `jw shell -c FILE -- jw power on` exits 0 with the
// driver in its own process, gone after the shell exits, without jw on the
// caller's PATH; the command sees the environment upstream's shell sets (a
// bare socket path, JMP_DRIVERS_ALLOW=UNSAFE); a failing command's status
// comes back.
func TestShellRunsOneCommand(t *testing.T) {
	jw := jwBinary(t)
	cfg := writeE2EConfig(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	script := `test -S "$JUMPSTARTER_HOST" && test "$JMP_DRIVERS_ALLOW" = UNSAFE &&
		jw power on && jw dut power state && ps -o comm= --ppid "$PPID" | grep -c '^jumpwire-driver'`
	cmd := exec.CommandContext(ctx, jw, "shell", "-c", cfg, "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin", "JUMPWIRE_PLUGIN_PATH=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jw shell: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "false" || got[1] != "2" {
		t.Errorf("output %q, want dut.power's state false and 2 plugin processes", out)
	}
	if left := pluginPids(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("plugins %v outlived the shell", left)
	}

	fail := exec.CommandContext(ctx, jw, "shell", "-c", cfg, "--", "sh", "-c", "exit 7")
	fail.Env = cmd.Env
	if err := fail.Run(); fail.ProcessState.ExitCode() != 7 {
		t.Errorf("jw shell -- sh -c 'exit 7': %v, exit code %d, want 7", err, fail.ProcessState.ExitCode())
	}
}
