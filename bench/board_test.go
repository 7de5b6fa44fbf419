package bench

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// boardImage is the directory `make image` built, or the benchmark is skipped.
func boardImage(tb testing.TB) string {
	tb.Helper()
	img := os.Getenv("JUMPWIRE_BOARD_IMAGE")
	if img == "" {
		tb.Skip("JUMPWIRE_BOARD_IMAGE is not set: run make image and point it at the image directory")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		tb.Skip("qemu-system-x86_64 is not installed")
	}
	return img
}

// qemuArgs are the arguments the qemu-power driver gives qemu for the demo
// board (TCG, as on machines without hardware virtualization), with the
// serial console on serial.
func qemuArgs(img, disk, serial string) []string {
	return []string{"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", serial, "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "256M", "-machine", "q35",
		"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", filepath.Join(img, "initrd.img"), "-append", "console=ttyS0",
		"-drive", "file=" + disk + ",format=raw,if=virtio,cache=writeback",
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0"}
}

// readUntil reads r until its output contains want.
func readUntil(tb testing.TB, r io.Reader, want string) {
	tb.Helper()
	var seen []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(seen, []byte(want)) {
		n, err := r.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			tb.Fatalf("the console ended (%v) before %q:\n%s", err, want, seen)
		}
		if len(seen) > 64<<10 {
			seen = seen[len(seen)-4096:]
		}
	}
}

// boardRig is an exporter serving the demo board, its disk flashed.
type boardRig struct {
	c              *client.Client
	power, console string // uuids
}

func startBoardRig(ctx context.Context, tb testing.TB, img string) *boardRig {
	tb.Helper()
	dir := tb.TempDir()
	tmpl, err := os.ReadFile(filepath.Join(testbin.Root(tb), "examples", "qemu-board.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := filepath.Join(dir, "exporter.yaml")
	conf := strings.NewReplacer("BOARD_DIR", dir, "BOARD_IMAGE", img).Replace(string(tmpl))
	conf = strings.Replace(conf, "memory: 256M", "memory: 256M\n          accel: tcg", 1)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	s := runJW(ctx, tb, cfg, testbin.PluginDir(tb, "qemu", "storage", "shell"), 6)
	jw := testbin.Build(tb, "./cmd/jw")
	if out, err := exec.CommandContext(ctx, jw, "--host", "unix://"+s.sock, "flash", "board.flasher", filepath.Join(img, "disk.img.gz")).CombinedOutput(); err != nil {
		tb.Fatalf("jw flash: %v\n%s", err, out)
	}
	c, power := dialDriver(ctx, tb, s.sock, "board.power")
	tree, err := c.Tree(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	con, err := tree.Lookup("board.console")
	if err != nil {
		tb.Fatal(err)
	}
	return &boardRig{c: c, power: power.UUID, console: con.UUID}
}

// boot powers the board on and returns how long it took to its login prompt
// and the console stream; the caller powers it off.
func (r *boardRig) boot(ctx context.Context, tb testing.TB) (time.Duration, *client.Stream) {
	tb.Helper()
	begin := time.Now()
	if _, err := r.c.Call(ctx, r.power, "on"); err != nil {
		tb.Fatal(err)
	}
	s, err := r.c.Stream(ctx, r.console, "connect")
	if err != nil {
		tb.Fatal(err)
	}
	readUntil(tb, s, "login:")
	return time.Since(begin), s
}

func (r *boardRig) off(ctx context.Context, tb testing.TB) {
	tb.Helper()
	if _, err := r.c.Call(ctx, r.power, "off"); err != nil {
		tb.Fatal(err)
	}
}

// directBoard runs qemu as the driver does, with the console on serial, and
// returns the process; it is killed at the end of the test.
func directBoard(tb testing.TB, img, serial string) *exec.Cmd {
	tb.Helper()
	disk := filepath.Join(tb.TempDir(), "disk.img")
	b, err := os.ReadFile(filepath.Join(img, "disk.img"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(disk, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("qemu-system-x86_64", qemuArgs(img, disk, serial)...)
	return cmd
}

// BenchmarkBoardBoot: power on to the login prompt on the serial console,
// through the exporter (qemu-power on, then the console stream) against qemu
// started directly with the same arguments, its console on stdout. TCG.
// Reported: the median seconds of each and their ratio.
func BenchmarkBoardBoot(b *testing.B) {
	img := boardImage(b)
	ctx := b.Context()
	rig := startBoardRig(ctx, b, img)
	var jw, direct []float64
	viaJW := func() {
		d, s := rig.boot(ctx, b)
		jw = append(jw, d.Seconds())
		_ = s.Close()
		rig.off(ctx, b)
	}
	straight := func() {
		cmd := directBoard(b, img, "stdio")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		readUntil(b, out, "login:")
		direct = append(direct, time.Since(begin).Seconds())
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			viaJW()
			straight()
		} else {
			straight()
			viaJW()
		}
	}
	mj, md := medianFloat(jw), medianFloat(direct)
	b.ReportMetric(mj, "boot-s")
	b.ReportMetric(md, "direct-boot-s")
	b.ReportMetric(mj/md, "x-direct")
}

// echoer sends one byte to a logged-in shell and waits for its echo; every
// 60 bytes it ends the line and waits for the prompt.
type echoer struct {
	w     io.Writer
	r     io.Reader
	typed int
}

func (e *echoer) once(tb testing.TB) time.Duration {
	tb.Helper()
	if e.typed == 60 {
		if _, err := e.w.Write([]byte("\r")); err != nil {
			tb.Fatal(err)
		}
		readUntil(tb, e.r, "# ")
		e.typed = 0
	}
	buf := make([]byte, 1)
	begin := time.Now()
	if _, err := e.w.Write([]byte("a")); err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := io.ReadFull(e.r, buf); err != nil {
			tb.Fatal(err)
		}
		if buf[0] == 'a' {
			break
		}
	}
	e.typed++
	return time.Since(begin)
}

// login logs in as root on a console at its login prompt.
func login(tb testing.TB, w io.Writer, r io.Reader) {
	tb.Helper()
	if _, err := w.Write([]byte("root\r")); err != nil {
		tb.Fatal(err)
	}
	readUntil(tb, r, "# ")
}

// BenchmarkBoardConsoleEcho: a byte typed at the board's shell and its echo,
// through the exporter's console stream against socat connected straight to
// qemu's serial socket (-serial unix:...). Reported: p50 and p99 of each and
// their ratios.
func BenchmarkBoardConsoleEcho(b *testing.B) {
	img := boardImage(b)
	if _, err := exec.LookPath("socat"); err != nil {
		b.Skip("socat is not installed")
	}
	ctx := b.Context()
	rig := startBoardRig(ctx, b, img)
	_, s := rig.boot(ctx, b)
	defer rig.off(ctx, b)
	login(b, s, s)
	jw := &echoer{w: s, r: s}

	sock := socketPath(b, "serial.sock")
	q := directBoard(b, img, "unix:"+sock+",server=on,wait=off")
	if err := q.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Process.Kill(); _ = q.Wait() })
	if !waitFor(ctx, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		b.Fatal("qemu's serial socket did not appear")
	}
	sc := exec.Command("socat", "-", "UNIX-CONNECT:"+sock)
	in, err := sc.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := sc.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := sc.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sc.Process.Kill(); _ = sc.Wait() })
	readUntil(b, out, "login:")
	login(b, in, out)
	direct := &echoer{w: in, r: out}

	for range 50 { // warm up both
		jw.once(b)
		direct.once(b)
	}
	var js, ds []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			js, ds = append(js, jw.once(b)), append(ds, direct.once(b))
		} else {
			ds, js = append(ds, direct.once(b)), append(js, jw.once(b))
		}
	}
	reportPair(b, "socat", js, ds, 50, 99)
}
