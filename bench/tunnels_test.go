package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// This file starts the TCP relays BenchmarkForwardThroughput compares: `jw
// forward tcp`, a socat relay, and an `ssh -L` tunnel through a private sshd
// on loopback. Each is a subprocess the test starts and reaps.

// tunnel is a local TCP address that relays each connection to a target.
type tunnel struct {
	name string
	addr string // host:port to connect to
}

// daemon is a subprocess a benchmark started, in its own process group.
type daemon struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string // its stderr's file
}

// startDaemon starts bin with args in a new process group, its stderr to a
// file, and stops it at the end of the test: SIGTERM to the group, then
// SIGKILL after 5s; it is reaped either way.
func startDaemon(tb testing.TB, bin string, args ...string) *daemon {
	tb.Helper()
	logs, err := os.CreateTemp(tb.TempDir(), filepath.Base(bin)+"-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{}), log: logs.Name()}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	tb.Cleanup(d.stop)
	return d
}

// stop ends the daemon's process group and reaps the daemon.
func (d *daemon) stop() {
	pgid := d.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.exited
	}
}

// logText returns what the daemon wrote to stderr so far.
func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log)
	return strings.TrimSpace(string(b))
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitTunnel waits until a connection through addr reaches the target (the
// target answers the probe's empty request by closing), or the daemon exits.
func waitTunnel(ctx context.Context, addr string, d *daemon) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if err := probe(ctx, addr); err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("exited: %s", d.logText())
		case <-ctx.Done():
			return fmt.Errorf("%s does not relay within 10s: %s", addr, d.logText())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// probe connects to addr, half-closes, and expects the target's orderly
// close (a relay that is not up yet refuses or resets).
func probe(ctx context.Context, addr string) error {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{opProbe}); err != nil {
		return err
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return fmt.Errorf("probe answered %q", b)
	}
	return nil
}

// socatTunnel starts `socat TCP-LISTEN:P,bind=127.0.0.1,reuseaddr,fork
// TCP:target`, skipping the test when socat is not installed.
func socatTunnel(ctx context.Context, tb testing.TB, target string) tunnel {
	tb.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		tb.Skip("socat is not installed, so there is no socat baseline (apt-get install -y socat)")
	}
	port := freePort(tb)
	d := startDaemon(tb, bin, fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port), "TCP:"+target)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitTunnel(ctx, addr, d); err != nil {
		tb.Fatalf("socat: %v", err)
	}
	return tunnel{name: "socat", addr: addr}
}

// sshd is the path of the OpenSSH server.
const sshd = "/usr/sbin/sshd"

// sshTunnel starts a private sshd on loopback (its own host key, config and
// authorized key in a temporary directory) and `ssh -N -L` through it to
// target. It skips the test, saying why, when OpenSSH cannot be had: not
// installed, not root, or sshd refusing to start.
func sshTunnel(ctx context.Context, tb testing.TB, target string) tunnel {
	tb.Helper()
	sshBin, err := exec.LookPath("ssh")
	keygen, kerr := exec.LookPath("ssh-keygen")
	if _, serr := os.Stat(sshd); err != nil || kerr != nil || serr != nil {
		tb.Skip("OpenSSH is not installed, so there is no ssh -L baseline (apt-get install -y openssh-server openssh-client)")
	}
	if os.Geteuid() != 0 {
		tb.Skip("the ssh -L baseline runs sshd, which needs root here; run the benchmark as root")
	}
	// sshd insists on its privilege-separation directory, which a container
	// without an init system may lack; it is what the distribution's init
	// script would create.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		tb.Skipf("sshd needs /run/sshd: %v; no ssh -L baseline", err)
	}
	u, err := user.Current()
	if err != nil {
		tb.Skipf("no user name for the ssh login: %v", err)
	}
	dir := tb.TempDir()
	hostKey, clientKey := filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "jumpwire-bench", "-f", k).CombinedOutput(); err != nil {
			tb.Skipf("ssh-keygen: %v: %s; no ssh -L baseline", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		tb.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		tb.Fatal(err)
	}
	sshPort := freePort(tb)
	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join([]string{
		"Port " + strconv.Itoa(sshPort),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + authorized,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"LogLevel ERROR",
	}, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command(sshd, "-t", "-f", cfg).CombinedOutput(); err != nil {
		tb.Skipf("sshd rejects its test config: %v: %s; no ssh -L baseline", err, out)
	}
	server := startDaemon(tb, sshd, "-D", "-e", "-f", cfg)
	if err := waitBanner(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(sshPort)), server); err != nil {
		tb.Skipf("sshd: %v; no ssh -L baseline", err)
	}
	// Registered after the server's, so this runs first: the tunnel's end
	// closes the connection and sshd's per-connection child exits before
	// sshd itself is stopped.
	tb.Cleanup(func() { reapChildren(server.cmd.Process.Pid) })

	port := freePort(tb)
	client := startDaemon(tb, sshBin, "-N", "-F", "/dev/null",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", port, target),
		"-p", strconv.Itoa(sshPort), "-i", clientKey,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
		u.Username+"@127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitTunnel(ctx, addr, client); err != nil {
		tb.Skipf("ssh -L: %v (sshd said: %s); no ssh -L baseline", err, server.logText())
	}
	return tunnel{name: "ssh", addr: addr}
}

// waitBanner waits until the sshd d listens on addr and greets with its
// protocol banner.
func waitBanner(ctx context.Context, addr string, d *daemon) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var dl net.Dialer
		if c, err := dl.DialContext(ctx, "tcp", addr); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "SSH-") {
				return nil
			}
		}
		select {
		case <-d.exited:
			return fmt.Errorf("exited: %s", d.logText())
		case <-ctx.Done():
			return fmt.Errorf("no banner on %s within 10s: %s", addr, d.logText())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reapChildren waits up to 5s for the child processes of pid to exit, then
// kills those left. (They are sshd's per-connection processes, which leave
// its process group.)
func reapChildren(pid int) {
	ctx := context.Background()
	if waitFor(ctx, 5*time.Second, func() bool { return len(children(pid)) == 0 }) {
		return
	}
	for _, p := range children(pid) {
		if _, start, ok := stat(p.pid); ok && start == p.start {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

var forwarding = regexp.MustCompile(`^forwarding (\S+) -> `)

// jwForward starts `jw --host SOCK forward tcp 127.0.0.1:0 PATH` and returns
// the address it prints.
func jwForward(ctx context.Context, tb testing.TB, sock, path string) tunnel {
	tb.Helper()
	jw := testbin.Build(tb, "./cmd/jw")
	cmd := exec.Command(jw, "--host", "unix://"+sock, "forward", "tcp", "127.0.0.1:0", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	logs, err := os.CreateTemp(tb.TempDir(), "jw-forward-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	addr := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if m := forwarding.FindStringSubmatch(s.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		return tunnel{name: "jw", addr: a}
	case <-exited:
		b, _ := os.ReadFile(logs.Name())
		tb.Fatalf("jw forward exited: %s", b)
	case <-time.After(30 * time.Second):
		tb.Fatal("jw forward printed no address within 30s")
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	return tunnel{}
}
