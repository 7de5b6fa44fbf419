package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// TestBoardE2E runs the demo's QEMU board through the exporter once: flash
// the image with jw flash, power on, log in on the serial console, fetch the
// board's web page through its forwarded port, power off. It needs the
// board image (make test builds it and sets JUMPWIRE_BOARD_IMAGE) and qemu.
func TestBoardE2E(t *testing.T) {
	b := startBoard(t)
	jw, img, sock, exp := b.jw, b.img, b.sock, b.exp

	// Flash with jw flash: the gzip image arrives decompressed, fsynced, hashed.
	disk, err := os.ReadFile(filepath.Join(img, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(disk)
	want := hex.EncodeToString(sum[:])
	out, err := exec.Command(jw, "--host", "unix://"+sock, "flash", "board.flasher", filepath.Join(img, "disk.img.gz")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("jw flash: %v\n%s\nwant the sha256 of the decompressed image, %s", err, out, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, uuid := b.dial(ctx, t)
	st, err := c.Call(ctx, uuid("board.flasher"), "status")
	if m, _ := st.(map[string]any); err != nil || m["complete"] != true || m["mux"] != "dut" || m["sha256"] != want {
		t.Fatalf("flasher status after jw flash: %v, %v; want complete, switched back to the DUT, the image's sha256", st, err)
	}
	if _, err := c.Call(ctx, uuid("board.power"), "on"); err != nil {
		t.Fatal(err)
	}
	ps, err := c.Call(ctx, uuid("board.power"), "status")
	if err != nil {
		t.Fatal(err)
	}
	qemuPid := int(ps.(map[string]any)["pid"].(float64))

	// Log in on the serial console.
	con := loginOnConsole(ctx, t, c, uuid("board.console"))
	if _, err := con.Write([]byte("echo jw-$((6 * 7))\r")); err != nil {
		t.Fatal(err)
	}
	expectOn(t, con, "jw-42")

	// The board's web service through its forwarded port; the service
	// starts before the login prompt.
	web, err := c.Stream(ctx, uuid("board.web"), "connect")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := web.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = web.CloseWrite()
	page, err := io.ReadAll(web)
	if !strings.Contains(string(page), "Hello from the jumpwire demo board") {
		t.Fatalf("the board's web page: %q, %v", page, err)
	}

	if _, err := c.Call(ctx, uuid("board.power"), "off"); err != nil {
		t.Fatal(err)
	}
	if on, err := c.Call(ctx, uuid("board.power"), "state"); err != nil || on != false {
		t.Fatalf("state after off: %v, %v", on, err)
	}
	if running(qemuPid) {
		t.Fatalf("qemu (pid %d) still runs after off", qemuPid)
	}
	// Stopping the exporter powers a running board off.
	if _, err := c.Call(ctx, uuid("board.power"), "on"); err != nil {
		t.Fatal(err)
	}
	ps, err = c.Call(ctx, uuid("board.power"), "status")
	if err != nil {
		t.Fatal(err)
	}
	qemuPid = int(ps.(map[string]any)["pid"].(float64))
	if err := exp.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = exp.Wait()
	b.exited = true
	waitFor(t, "qemu ends with the exporter", func() bool { return !running(qemuPid) })
}

// expectOn reads r until its output contains want, failing the test when the
// stream ends first (the test's context bounds the wait).
func expectOn(t *testing.T, r io.Reader, want string) {
	t.Helper()
	var seen []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(seen, []byte(want)) {
		n, err := r.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			t.Fatalf("the console ended (%v) before %q; it printed:\n%s", err, want, seen)
		}
		if len(seen) > 1<<20 {
			seen = seen[len(seen)-4096:]
		}
	}
}

// TestShellDriverThroughJw: jw runs a shell driver's method as upstream's
// ShellClient does: output as it comes, the command's return code as jw's.
func TestShellDriverThroughJw(t *testing.T) {
	jw := jwBinary(t)
	dst := filepath.Join(filepath.Dir(jw), "plugins", "jumpwire-driver-shell")
	if err := os.Link(testbin.Build(t, "./drivers/shell/cmd/jumpwire-driver-shell"), dst); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "exporter.yaml")
	conf := `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: shell}
export:
  host:
    type: jumpstarter_driver_shell.driver.Shell
    config:
      shell: [sh, -c]
      methods:
        greet: 'echo "hello $1"; echo "to stderr" >&2; exit 4'
`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(jw, "shell", "-c", cfg, "--", "sh", "-c", "jw host greet world; echo \"rc=$?\"; jw host call_method greet '{}' there")
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(jw)+":"+os.Getenv("PATH"), "JUMPWIRE_PLUGIN_PATH=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	if got := stdout.String(); got != "hello world\nrc=4\nhello there\n" {
		t.Errorf("stdout %q; want the command's output, its return code, and call_method's output", got)
	}
	if got := stderr.String(); strings.Count(got, "to stderr\n") != 2 {
		t.Errorf("stderr %q; want the command's stderr twice", got)
	}
	if cmd.ProcessState.ExitCode() != 4 {
		t.Errorf("jw shell exited %d; want the last run's return code 4", cmd.ProcessState.ExitCode())
	}
}

// TestFlashUpload: jw flash gives a flasher without write_stream (upstream's
// contract: flash(image, target)) the image as an upload.
func TestFlashUpload(t *testing.T) {
	jw := jwBinary(t)
	dst := filepath.Join(filepath.Dir(jw), "plugins", "jumpwire-driver-sink")
	if err := os.Link(testbin.Build(t, "./internal/testplugins/sink"), dst); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "exporter.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata: {name: up}\nexport:\n  sink: {type: sink}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	img := bytes.Repeat([]byte("jumpwire"), 3<<17) // 3 MiB
	path := filepath.Join(dir, "image.raw")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	cmd := exec.Command(jw, "shell", "-c", cfg, "--", jw, "flash", "sink", path)
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	out, err := cmd.CombinedOutput()
	want := "wrote 3145728 bytes to sink, sha256 " + hex.EncodeToString(sum[:]) + "\n"
	if err != nil || string(out) != want {
		t.Fatalf("jw flash sink: %v\n%s\nwant %q", err, out, want)
	}
}

// boardRun is the QEMU board's exporter that startBoard started.
type boardRun struct {
	jw, img   string // jw, and the board image's directory
	dir       string // the exporter's config, socket and board state
	cfg       string
	conf      string // the config as written
	sock      string
	exp       *exec.Cmd
	exited    bool // set once the test stopped or killed exp itself
	expStderr bytes.Buffer
}

// startBoard starts jw run on examples/qemu-board.yaml with the board
// image (JUMPWIRE_BOARD_IMAGE; the test is skipped without it) and waits
// until it listens. The exporter is killed at the test's end unless the
// test set exited, and its log is shown when the test failed.
func startBoard(t *testing.T) *boardRun {
	t.Helper()
	img := os.Getenv("JUMPWIRE_BOARD_IMAGE")
	if img == "" {
		t.Skip("JUMPWIRE_BOARD_IMAGE is not set: `make test` builds the board image (make image) and sets it")
	}
	for _, f := range []string{"vmlinuz", "initrd.img", "disk.img", "disk.img.gz"} {
		if _, err := os.Stat(filepath.Join(img, f)); err != nil {
			t.Fatalf("the board image is incomplete: %v (run make image)", err)
		}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("qemu is not installed (make board-deps installs it): %v", err)
	}
	b := &boardRun{jw: jwBinary(t), img: img, dir: t.TempDir()}
	for _, d := range []string{"qemu", "storage", "shell"} {
		dst := filepath.Join(filepath.Dir(b.jw), "plugins", "jumpwire-driver-"+d)
		if err := os.Link(testbin.Build(t, "./drivers/"+d+"/cmd/jumpwire-driver-"+d), dst); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := os.ReadFile(filepath.Join(testbin.Root(t), "examples", "qemu-board.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = filepath.Join(b.dir, "exporter.yaml")
	b.conf = strings.NewReplacer("BOARD_DIR", b.dir, "BOARD_IMAGE", img).Replace(string(tmpl))
	if err := os.WriteFile(b.cfg, []byte(b.conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.sock = filepath.Join(b.dir, "e.sock")
	b.exp = exec.Command(b.jw, "run", "-c", b.cfg, "--listen", "unix://"+b.sock)
	b.exp.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	b.exp.Stderr = &b.expStderr
	if err := b.exp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !b.exited {
			_ = b.exp.Process.Kill()
			_ = b.exp.Wait()
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", b.expStderr.String())
		}
	})
	waitFor(t, "the exporter listens", func() bool { _, err := os.Stat(b.sock); return err == nil })
	return b
}

// dial connects to the board's exporter (closed at the test's end) and
// returns the client and a lookup of a driver's uuid by its path.
func (b *boardRun) dial(ctx context.Context, t *testing.T) (*client.Client, func(path string) string) {
	t.Helper()
	c, err := client.Dial(ctx, "unix://"+b.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tree, err := c.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c, func(path string) string {
		d, err := tree.Lookup(path)
		if err != nil {
			t.Fatal(err)
		}
		return d.UUID
	}
}

// loginOnConsole opens the board's console (closed at the test's end) and
// logs in as root, up to the shell's prompt.
func loginOnConsole(ctx context.Context, t *testing.T, c *client.Client, console string) *client.Stream {
	t.Helper()
	con, err := c.Stream(ctx, console, "connect")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	expectOn(t, con, "login:")
	if _, err := con.Write([]byte("root\r")); err != nil {
		t.Fatal(err)
	}
	expectOn(t, con, "# ")
	return con
}
