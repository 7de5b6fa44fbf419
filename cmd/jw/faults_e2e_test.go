package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// faultsJW lays out jw with the power and faulty plugins next to it, as
// `make build` does, and returns jw's path.
func faultsJW(t *testing.T) string {
	t.Helper()
	return jwBinary(t, "./internal/testplugins/faulty")
}

// jwRun starts `jw run` on config and waits until it serves with nplugins
// plugin processes. It returns the command and the --host value for clients.
func jwRun(t *testing.T, jw, config string, nplugins int) (*exec.Cmd, string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "e.sock")
	cmd := exec.Command(jw, "run", "-c", cfg, "--listen", "unix://"+sock)
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "jw run serves with its plugins", func() bool {
		_, err := os.Stat(sock)
		return err == nil && len(pluginPids(t, cmd.Process.Pid)) == nplugins
	})
	return cmd, "unix://" + sock
}

// jwClient runs a client command of jw against host and returns its stdout.
func jwClient(t *testing.T, jw, host string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, jw, append([]string{"--host", host}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jw %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// psRunning lists which of pids ps shows as running (zombies are dead).
func psRunning(t *testing.T, pids ...int) []int {
	t.Helper()
	list := make([]string, len(pids))
	for i, p := range pids {
		list[i] = strconv.Itoa(p)
	}
	out, _ := exec.Command("ps", "-o", "pid=,stat=", "-p", strings.Join(list, ",")).Output() // exit 1: none
	var live []int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[1], "Z") {
			pid, _ := strconv.Atoi(f[0])
			live = append(live, pid)
		}
	}
	return live
}

// psInGroups lists the running processes in the process groups pgids (each
// plugin leads its own group, and what it starts joins it).
func psInGroups(t *testing.T, pgids []int) []string {
	t.Helper()
	out, _ := exec.Command("ps", "-e", "-o", "pgid=,stat=,pid=,args=").Output()
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || strings.HasPrefix(f[1], "Z") {
			continue
		}
		if g, _ := strconv.Atoi(f[0]); slices.Contains(pgids, g) {
			found = append(found, sc.Text())
		}
	}
	return found
}

// TestKilledExporterLeavesNoDescendants: kill -9 of `jw run` takes its
// plugin processes with it, and the processes those plugins started.
func TestKilledExporterLeavesNoDescendants(t *testing.T) {
	jw := faultsJW(t)
	run, host := jwRun(t, jw, `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: e2e-faults}
export:
  power: {type: power}
  faulty: {type: faulty}
`, 2)
	plugins := pluginPids(t, run.Process.Pid)
	child, err := strconv.Atoi(strings.TrimSpace(jwClient(t, jw, host, "call", "faulty", "spawn")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // if the test fails with the child still there
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(child) + "/cmdline"); running(child) && strings.Contains(string(b), "sleep\x001000") {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	})
	pids := append(slices.Clone(plugins), child)
	if live := psRunning(t, pids...); len(live) != 3 {
		t.Fatalf("ps shows %v running of plugins %v and their child %d", live, plugins, child)
	}
	if in := psInGroups(t, plugins); len(in) != 3 {
		t.Fatalf("the plugins' process groups hold %q; want the 2 plugins and the child", in)
	}
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	killed := time.Now()
	waitFor(t, "the killed exporter's plugins and the child one started are gone", func() bool {
		return len(psRunning(t, pids...)) == 0
	})
	t.Logf("gone %s after the exporter was killed", time.Since(killed))
	if left := psInGroups(t, plugins); len(left) > 0 {
		t.Errorf("processes of the killed exporter's plugins left: %q", left)
	}
}

// TestKilledDriverDuringPowerRead is the acceptance check of crash
// isolation: kill -9 of the power driver's process while `jw power read`
// streams gives the user one clear line naming the driver and the signal,
// and the next `jw power on` succeeds.
func TestKilledDriverDuringPowerRead(t *testing.T) {
	jw := faultsJW(t)
	_, host := jwRun(t, jw, `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: e2e-faults}
export:
  power:
    type: power
    config: {readings: 100000, interval: 5ms}
  faulty: {type: faulty}
`, 2)
	pid := powerHealth(t, jw, host).Pid

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	read := exec.CommandContext(ctx, jw, "--host", host, "power", "read")
	var stderr bytes.Buffer
	read.Stderr = &stderr
	stdout, err := read.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := read.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		_ = read.Wait()
		t.Fatalf("jw power read printed no reading: %s", stderr.String())
	}
	if pid == nil {
		t.Fatal("jw status shows no pid for power")
	}
	if err := syscall.Kill(*pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // the readings streamed before the kill
	}
	err = read.Wait()
	if code := read.ProcessState.ExitCode(); code != 1 {
		t.Errorf("jw power read: %v, exit code %d, want 1", err, code)
	}
	const want = "jw: power.read: unavailable: driver power (power) was killed by SIGKILL\n"
	if got := stderr.String(); got != want {
		t.Errorf("jw power read's stderr:\n%q\nwant one line:\n%q", got, want)
	}

	jwClient(t, jw, host, "power", "on")
	h := powerHealth(t, jw, host)
	if h.State != "running" || h.Restarts != 1 || h.LastExit != "was killed by SIGKILL" || h.Pid == nil || *h.Pid == *pid {
		t.Errorf("jw status after the restart: %+v (pid before %d)", h, *pid)
	}
}

// powerHealth is the power driver's entry in `jw status -o json` (pid and restarts are numbers).
func powerHealth(t *testing.T, jw, host string) driverHealth {
	t.Helper()
	var doc struct{ Drivers []driverHealth }
	if err := json.Unmarshal([]byte(jwClient(t, jw, host, "status", "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, d := range doc.Drivers {
		if d.Path == "power" {
			return d
		}
	}
	t.Fatalf("jw status shows no power driver: %v", doc.Drivers)
	return driverHealth{}
}
