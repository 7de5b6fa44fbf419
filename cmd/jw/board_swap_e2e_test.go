package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBoardSurvivesASwap: replacing the board's power driver within a
// session (jw reload after its config changed) does not power the board
// off: the successor adopts the running guest, which keeps what it had
// (a file written before the swap), and off() still reaches it. Killing
// the exporter (SIGKILL) then leaves no qemu and no keeper behind.
func TestBoardSurvivesASwap(t *testing.T) {
	b := startBoard(t)
	jw, img, dir, cfg, conf, sock, exp := b.jw, b.img, b.dir, b.cfg, b.conf, b.sock, b.exp
	if out, err := exec.Command(jw, "--host", "unix://"+sock, "flash", "board.flasher", filepath.Join(img, "disk.img.gz")).CombinedOutput(); err != nil {
		t.Fatalf("jw flash: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, uuid := b.dial(ctx, t)
	qemuPid := func() int {
		ps, err := c.Call(ctx, uuid("board.power"), "status")
		if err != nil {
			t.Fatal(err)
		}
		m := ps.(map[string]any)
		if m["on"] != true {
			t.Fatalf("board.power status %v; want on", m)
		}
		return int(m["pid"].(float64))
	}
	// pluginPid is the pid of the power driver's process, as the exporter
	// reports it.
	pluginPid := func() int {
		tr, err := c.Tree(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d, err := tr.Lookup("board.power")
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(d.Labels["jumpwire.dev/pid"])
		if err != nil {
			t.Fatalf("board.power's labels %v: no pid", d.Labels)
		}
		return pid
	}
	if _, err := c.Call(ctx, uuid("board.power"), "on"); err != nil {
		t.Fatal(err)
	}
	before := qemuPid()
	oldPlugin := pluginPid()
	con := loginOnConsole(ctx, t, c, uuid("board.console"))
	if _, err := con.Write([]byte("echo swapped > /tmp/jw-marker && echo written-$((20+1))\r")); err != nil {
		t.Fatal(err)
	}
	expectOn(t, con, "written-21")

	// A changed config swaps the power driver's process.
	conf = strings.Replace(conf, "memory: 256M", "memory: 256M\n          stop_timeout: 6s", 1)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(jw, "--host", "unix://"+sock, "reload").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "board.power") {
		t.Fatalf("jw reload: %v\n%s\nwant board.power swapped", err, out)
	}
	if after := qemuPid(); after != before {
		t.Fatalf("after the swap the board runs qemu pid %d; want the same qemu, pid %d", after, before)
	}
	if p := pluginPid(); p == oldPlugin || running(oldPlugin) {
		t.Fatalf("board.power runs in pid %d after the swap, and %d runs: %v; want a new process, the old one gone", p, oldPlugin, running(oldPlugin))
	}
	// The same guest: the console stream opened before the swap goes on,
	// and the file written before it is there.
	if _, err := con.Write([]byte("echo still-$(cat /tmp/jw-marker)-$((40+2))\r")); err != nil {
		t.Fatal(err)
	}
	expectOn(t, con, "still-swapped-42")

	// A crash of the power driver's process: the exporter restarts it
	// (configured, not Reset), and the restarted driver adopts the board.
	crashed := pluginPid()
	if err := syscall.Kill(crashed, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "board.power restarted", func() bool {
		_, err := c.Call(ctx, uuid("board.power"), "state")
		return err == nil && pluginPid() != crashed
	})
	if after := qemuPid(); after != before {
		t.Fatalf("after its driver crashed the board runs qemu pid %d; want the same qemu, pid %d", after, before)
	}
	if _, err := con.Write([]byte("echo alive-$((50+5))\r")); err != nil {
		t.Fatal(err)
	}
	expectOn(t, con, "alive-55")

	// SIGKILL gives the exporter no chance to power off: the keeper sees
	// it go and takes qemu with it.
	run, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Keeper int }
	if err := json.Unmarshal(run, &rec); err != nil || rec.Keeper == 0 {
		t.Fatalf("run.json %s: %v", run, err)
	}
	if err := exp.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = exp.Wait()
	b.exited = true
	waitFor(t, "qemu and its keeper end with the exporter", func() bool { return !running(before) && !running(rec.Keeper) })
}
