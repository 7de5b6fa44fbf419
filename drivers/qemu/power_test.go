package qemu_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/drivers/qemu"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeQemu stands in for qemu-system-*: it prints its arguments on the
// serial console (stdout), echoes each line it reads, exits 3 on "crash" and
// ignores SIGTERM when started with "stubborn".
const fakeQemu = `#!/bin/sh
echo "fake qemu $*"
case "$*" in *stubborn*) trap '' TERM;; esac
while IFS= read -r line; do
	[ "$line" = crash ] && exit 3
	echo "echo: $line"
done
`

type board struct {
	dir     string
	power   *sdktest.Instance
	console *sdktest.Instance
}

func newBoard(t *testing.T, extra map[string]any) board {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu-fake")
	if err := os.WriteFile(bin, []byte(fakeQemu), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"state_dir": dir, "binary": bin, "accel": "tcg", "kernel": "/boot/nothing", "stop_timeout": "200ms"}
	for k, v := range extra {
		cfg[k] = v
	}
	return board{
		dir:     dir,
		power:   sdktest.Start(t, qemu.Power, cfg),
		console: sdktest.Start(t, qemu.Console, map[string]any{"state_dir": dir}),
	}
}

func (b board) status(t *testing.T) map[string]any {
	t.Helper()
	v, err := b.power.Call(t.Context(), "status")
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

// expect reads lines from the console until one contains want.
func expect(t *testing.T, sc *bufio.Scanner, want string) {
	t.Helper()
	var seen []string
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return
		}
		seen = append(seen, sc.Text())
	}
	t.Fatalf("the console never printed %q; it printed %q (%v)", want, seen, sc.Err())
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return strings.Contains(string(b), ") Z ")
}

// streamErr is how a console stream ends at once.
func streamErr(ctx context.Context, d *sdktest.Instance) error {
	conn, err := d.Stream(ctx, "connect")
	if err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

func TestPowerAndConsole(t *testing.T) {
	b := newBoard(t, map[string]any{"append": "console=ttyS0 quiet"})
	ctx := t.Context()
	if err := streamErr(ctx, b.console); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "powered off") {
		t.Fatalf("console while off: %v; want UNAVAILABLE", err)
	}
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	st := b.status(t)
	if st["on"] != true || st["accel"] != "tcg" {
		t.Fatalf("status after on: %v", st)
	}
	pid := int(st["pid"].(float64))
	conn, err := b.console.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(conn)
	// What the board printed before the stream opened comes first.
	expect(t, sc, "-kernel /boot/nothing -append console=ttyS0 quiet")
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	expect(t, sc, "echo: hello")
	if _, err := b.power.Call(ctx, "off"); err != nil {
		t.Fatal(err)
	}
	if on, err := b.power.Call(ctx, "state"); err != nil || on != false {
		t.Fatalf("state after off: %v, %v", on, err)
	}
	if !gone(pid) {
		t.Fatalf("qemu (pid %d) still runs after off", pid)
	}
	for sc.Scan() { // the console stream ends with the board
	}
	if _, err := os.Stat(filepath.Join(b.dir, "console.sock")); !os.IsNotExist(err) {
		t.Fatalf("the console socket outlived the board: %v", err)
	}
}

// TestCrashIsPowerOff: a qemu that dies is a board that is off, and the
// driver keeps serving.
func TestCrashIsPowerOff(t *testing.T) {
	b := newBoard(t, nil)
	ctx := t.Context()
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	conn, err := b.console.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("crash\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the board to be off", func() bool { return b.status(t)["on"] == false })
	if le, _ := b.status(t)["last_exit"].(string); !strings.Contains(le, "exit status 3") {
		t.Fatalf("last_exit %q; want the exit status", le)
	}
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatalf("on after a crash: %v", err)
	}
	if b.status(t)["on"] != true {
		t.Fatal("the board did not power on again after a crash")
	}
}

// TestOffKillsAStubbornQemu: SIGTERM ignored, SIGKILL after stop_timeout.
func TestOffKillsAStubbornQemu(t *testing.T) {
	b := newBoard(t, map[string]any{"args": []string{"stubborn"}})
	ctx := t.Context()
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	pid := int(b.status(t)["pid"].(float64))
	if _, err := b.power.Call(ctx, "off"); err != nil {
		t.Fatal(err)
	}
	// SIGKILL is sent before off returns; the kernel's teardown of the
	// process may take a moment longer.
	waitFor(t, fmt.Sprintf("qemu (pid %d), which survived off", pid), func() bool { return gone(pid) })
}

func TestCloseStopsTheBoard(t *testing.T) {
	b := newBoard(t, nil)
	ctx := t.Context()
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	pid := int(b.status(t)["pid"].(float64))
	if err := b.power.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("qemu (pid %d) survived Close", pid)
	}
}

func TestQemuRefusesItsArguments(t *testing.T) {
	b := newBoard(t, map[string]any{"binary": "/bin/false"})
	_, err := b.power.Call(t.Context(), "on")
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("on with a qemu that exits at once: %v; want UNAVAILABLE with its exit", err)
	}
	if _, err := newBoard(t, map[string]any{"binary": "/nonexistent/qemu-system-x86_64"}).power.Call(t.Context(), "on"); status.Code(err) != codes.Unavailable {
		t.Fatalf("on without qemu: %v; want UNAVAILABLE", err)
	}
}

func TestDiskChecks(t *testing.T) {
	for _, tc := range []struct {
		name, state, want string
	}{
		{"half written", `{"mux":"dut","complete":false,"written":4096,"error":"client went away"}`, "was not fully written (4096 bytes: client went away)"},
		{"switched to the host", `{"mux":"host","complete":true}`, "switched to the host; call dut()"},
		{"switched off", `{"mux":"off","complete":true}`, "switched off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBoard(t, nil)
			disk := filepath.Join(b.dir, "disk.img")
			if err := os.WriteFile(disk, []byte("disk"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(b.dir, ".disk.img.jumpwire-storage"), []byte(tc.state), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := b.power.Call(t.Context(), "on")
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("on: %v; want FAILED_PRECONDITION containing %q", err, tc.want)
			}
		})
	}
}

func TestForwardWhileOff(t *testing.T) {
	dir := t.TempDir()
	f := sdktest.Start(t, qemu.Forwarded, map[string]any{"state_dir": dir, "name": "web"})
	if _, err := f.Call(t.Context(), "address"); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "powered off") {
		t.Fatalf("address while off: %v; want UNAVAILABLE saying the board is off", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no state dir", map[string]any{}, "state_dir: required"},
		{"relative state dir", map[string]any{"state_dir": "b1"}, "state_dir: must be an absolute path"},
		{"bad accel", map[string]any{"state_dir": "/tmp/b", "accel": "hvf"}, "accel: expected auto, kvm or tcg"},
		{"bad memory", map[string]any{"state_dir": "/tmp/b", "memory": "lots"}, "memory: expected a size"},
		{"initrd without kernel", map[string]any{"state_dir": "/tmp/b", "initrd": "/boot/initrd"}, "initrd: needs a kernel"},
		{"bad guest port", map[string]any{"state_dir": "/tmp/b", "forward": map[string]any{"web": map[string]any{"guest_port": 0}}}, "forward.web.guest_port: must be 1-65535"},
		{"unknown forward key", map[string]any{"state_dir": "/tmp/b", "forward": map[string]any{"web": map[string]any{"guest_port": 80, "proto": "udp"}}}, "proto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sdktest.Configure(t, qemu.Power, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestConsoleBacklog: a new console stream gets the last backlog bytes the
// board printed, not more.
func TestConsoleBacklog(t *testing.T) {
	b := newBoard(t, map[string]any{"backlog": 64})
	ctx := t.Context()
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	first, err := b.console.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(first)
	for i := range 20 {
		if _, err := first.Write([]byte("line-" + strconv.Itoa(i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, sc, "echo: line-19")
	second, err := b.console.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	for len(got) < 64 {
		n, err := second.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if len(got) != 64 || !strings.HasSuffix(string(got), "echo: line-19\n") {
		t.Fatalf("a new stream got %q first; want the last 64 bytes, ending with the last line", got)
	}
}

// TestNextBoot: upstream's set_memory_size and set_disk_size on the board's
// root apply at the power driver's next on().
func TestNextBoot(t *testing.T) {
	b := newBoard(t, nil)
	root := sdktest.Start(t, qemu.Board, map[string]any{"state_dir": b.dir})
	ctx := t.Context()
	disk := filepath.Join(b.dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Call(ctx, "set_memory_size", "lots"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("set_memory_size lots: %v; want INVALID_ARGUMENT", err)
	}
	if _, err := root.Call(ctx, "set_memory_size", "1G"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Call(ctx, "set_disk_size", "1M"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	conn, err := b.console.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, bufio.NewScanner(conn), "-m 1G")
	if st, err := os.Stat(disk); err != nil || st.Size() != 1<<20 {
		t.Fatalf("the disk after set_disk_size 1M: %v, %v; want 1 MiB", st.Size(), err)
	}
	if _, err := b.power.Call(ctx, "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Call(ctx, "set_disk_size", "2K"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.power.Call(ctx, "on"); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "shrinking") {
		t.Fatalf("on after set_disk_size 2K: %v; want INVALID_ARGUMENT refusing to shrink", err)
	}
}

// successor configures a power driver of b as the exporter does after a
// swap or a crash: configured, not Reset.
func successor(t *testing.T, b board) *sdktest.Instance {
	t.Helper()
	next, err := sdktest.Configure(t, qemu.Power, map[string]any{"state_dir": b.dir, "binary": filepath.Join(b.dir, "qemu-fake"), "accel": "tcg", "kernel": "/boot/nothing", "stop_timeout": "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.Close(context.Background()) })
	return next
}

// TestSuccessorAdoptsTheBoard: a power driver handed over (a swap) leaves
// the board running; its successor, configured and not Reset, finds it
// (the same qemu), serves its console and powers it off.
func TestSuccessorAdoptsTheBoard(t *testing.T) {
	b := newBoard(t, nil)
	ctx := t.Context()
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	pid := int(b.status(t)["pid"].(float64))
	conn, err := b.console.Stream(ctx, "connect")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(conn)
	if _, err := conn.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	expect(t, sc, "echo: before")
	if err := b.power.HandOver(ctx); err != nil {
		t.Fatal(err)
	}
	if gone(pid) {
		t.Fatalf("qemu (pid %d) ended when its driver was handed over", pid)
	}
	next := successor(t, b)
	v, err := next.Call(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	if st := v.(map[string]any); st["on"] != true || int(st["pid"].(float64)) != pid {
		t.Fatalf("the successor's status %v; want on, with qemu pid %d", st, pid)
	}
	// The console stream opened before the swap goes on: the keeper serves it.
	if _, err := conn.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	expect(t, sc, "echo: after")
	if _, err := next.Call(ctx, "off"); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("qemu (pid %d) survived the successor's off", pid)
	}
}

// TestResetPowersOffABoardLeftOn: a new session's first process finds a
// board still running (its predecessor's Close did not happen) and Reset
// powers it off.
func TestResetPowersOffABoardLeftOn(t *testing.T) {
	b := newBoard(t, nil)
	ctx := t.Context()
	if _, err := b.power.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	pid := int(b.status(t)["pid"].(float64))
	if err := b.power.HandOver(ctx); err != nil {
		t.Fatal(err)
	}
	next := successor(t, b)
	if err := next.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("qemu (pid %d) survived Reset", pid)
	}
	if on, err := next.Call(ctx, "state"); err != nil || on != false {
		t.Fatalf("state after Reset: %v, %v", on, err)
	}
}
