package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/emptypb"
)

var (
	abuseConns = flag.Int("abuse.conns", 500, "BenchmarkUnderAbuse: idle anonymous TLS connections held")
	abuseCalls = flag.Int("abuse.calls", 8, "BenchmarkUnderAbuse: unauthenticated calls in flight at once")
	abuseSize  = flag.Int("abuse.size", 63<<20, "BenchmarkUnderAbuse: size of each unauthenticated call, in bytes")
	abuseN     = flag.Int("abuse.samples", 1000, "BenchmarkUnderAbuse: authorised calls timed in each phase")
)

// tcpExporter is `jw run` serving a power driver over TCP with a
// self-signed certificate and a passphrase, as a subprocess.
type tcpExporter struct {
	pid  int
	addr string
}

const benchPassphrase = "bench passphrase"

func runTCPExporter(ctx context.Context, tb testing.TB) *tcpExporter {
	tb.Helper()
	jw := testbin.Build(tb, "./cmd/jw")
	dir := tb.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte(benchPassphrase+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "jw.log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.Command(jw, "run", "-c", exporterConfig(tb, 1), "--plugin-dir", testbin.PluginDir(tb, "power"),
		"--listen", "tcp://127.0.0.1:0", "--tls-self-signed", "--passphrase-file", pass, "--log-level", "error")
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r := &jwRun{pid: cmd.Process.Pid}
	r.Stop = sync.OnceFunc(func() { r.stop(cmd, exited) })
	tb.Cleanup(r.Stop)
	addrs := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if _, rest, ok := strings.Cut(s.Text(), "serving on tcp://"); ok {
				addr, _, _ := strings.Cut(rest, " ")
				addrs <- addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-addrs:
		return &tcpExporter{pid: cmd.Process.Pid, addr: addr}
	case <-exited:
		b, _ := os.ReadFile(logs.Name())
		tb.Fatalf("jw run exited before serving:\n%s", b)
	case <-time.After(60 * time.Second):
		tb.Fatal("jw run did not serve within a minute")
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	return nil
}

type benchPassphraseCreds string

func (p benchPassphraseCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{exporter.PassphraseHeader: string(p)}, nil
}
func (benchPassphraseCreds) RequireTransportSecurity() bool { return true }

// client connects to x from the local address ip with passphrase.
func (x *tcpExporter) client(tb testing.TB, ip, passphrase string) jumpstarterv1.ExporterServiceClient {
	tb.Helper()
	opts := append(protocol.DialOptions(protocol.TCP|protocol.TLS),
		// The benchmark trusts its own exporter on loopback.
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})), //nolint:gosec
		grpc.WithPerRPCCredentials(benchPassphraseCreds(passphrase)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			return d.DialContext(ctx, "tcp", addr)
		}))
	cc, err := grpc.NewClient("passthrough:///"+x.addr, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return jumpstarterv1.NewExporterServiceClient(cc)
}

// abuse is the attack of BenchmarkUnderAbuse: jumpwire-bench-abuser, a
// process of its own, so that its work does not slow the measured client.
type abuse struct {
	cmd           *exec.Cmd
	exited        chan struct{}
	held, refused atomic.Int64 // as it last reported
}

// startAbuse starts the attacker against x: conns idle TLS connections
// and calls unauthenticated calls of size bytes in flight.
func startAbuse(tb testing.TB, x *tcpExporter, conns, calls, size int) *abuse {
	tb.Helper()
	bin := testbin.Build(tb, "./bench/internal/abuser")
	a := &abuse{exited: make(chan struct{})}
	a.cmd = exec.Command(bin, x.addr, strconv.Itoa(conns), strconv.Itoa(calls), strconv.Itoa(size))
	a.cmd.Stderr = os.Stderr
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			var h, r int64
			if _, err := fmt.Sscanf(s.Text(), "held %d refused %d", &h, &r); err == nil {
				a.held.Store(h)
				a.refused.Store(r)
			}
		}
		_ = a.cmd.Wait()
		close(a.exited)
	}()
	tb.Cleanup(a.end)
	return a
}

// end stops the attacker (SIGTERM, then SIGKILL after 10s).
func (a *abuse) end() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

// cpuTime is the CPU time (user and system) process pid has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after "(comm)": utime and stime are the 12th and 13th, in
	// clock ticks (100 a second on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// sampleRSS records the peak VmRSS of pid until stopped.
func sampleRSS(pid int) (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := rss(pid); err == nil && v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// underAbuse measures calls DriverCalls of an authorised client on an idle
// exporter, then as many while the exporter is under attack, and the
// exporter's peak RSS under attack.
func underAbuse(ctx context.Context, tb testing.TB, calls, conns, unauth, size int) (idle, attacked []time.Duration, peak int64, cpu float64, a *abuse) {
	x := runTCPExporter(ctx, tb)
	c := x.client(tb, "127.0.0.1", benchPassphrase)
	rep, err := c.GetReport(ctx, &emptypb.Empty{})
	if err != nil {
		tb.Fatal(err)
	}
	uuid := rep.Reports[len(rep.Reports)-1].Uuid
	call := driverCall(c, uuid, "state")
	for range 100 { // warm up
		callOnce(ctx, tb, "authorised", call)
	}
	for range calls {
		idle = append(idle, callOnce(ctx, tb, "authorised", call))
	}
	stopRSS := sampleRSS(x.pid)
	a = startAbuse(tb, x, conns, unauth, size)
	waitFor(ctx, 30*time.Second, func() bool {
		return a.held.Load() >= int64(min(conns, 64)) && (unauth == 0 || a.refused.Load() > 0)
	})
	began, used := time.Now(), cpuTime(x.pid)
	for range calls {
		attacked = append(attacked, callOnce(ctx, tb, "authorised", call))
	}
	cpu = float64(cpuTime(x.pid)-used) / float64(time.Since(began))
	a.end()
	return idle, attacked, stopRSS(), cpu, a
}

// BenchmarkUnderAbuse measures an authorised client's DriverCall on an
// exporter served over TCP with TLS and a passphrase (`jw run`, a
// subprocess), first idle, then while strangers hold -abuse.conns idle TLS
// connections (from 250 loopback addresses, reopening what the exporter
// closes) and keep -abuse.calls unauthenticated calls of -abuse.size bytes
// in flight. Reported: p50 and p99 under attack (p50-ns, p99-ns), idle
// (idle-p50-ns, idle-p99-ns), their ratios (x-idle-p50, x-idle-p99), the
// exporter's peak RSS under attack (peak-RSS-MiB), the CPUs it used while
// attacked (exporter-CPUs: CPU time over wall time) and the calls refused
// (refused-calls).
func BenchmarkUnderAbuse(b *testing.B) {
	ctx := b.Context()
	var idle, attacked []time.Duration
	var (
		peak int64
		cpu  float64
		a    *abuse
	)
	for b.Loop() {
		i, at, p, c, ab := underAbuse(ctx, b, *abuseN, *abuseConns, *abuseCalls, *abuseSize)
		idle, attacked, peak, cpu, a = append(idle, i...), append(attacked, at...), max(peak, p), max(cpu, c), ab
	}
	reportPair(b, "idle", attacked, idle, 50, 99)
	b.ReportMetric(float64(peak)/mib, "peak-RSS-MiB")
	b.ReportMetric(cpu, "exporter-CPUs")
	b.ReportMetric(float64(a.refused.Load()), "refused-calls")
}

// TestAbuseBenchmark runs BenchmarkUnderAbuse's measurement at a tiny
// scale, to check that it works.
func TestAbuseBenchmark(t *testing.T) {
	idle, attacked, peak, _, a := underAbuse(t.Context(), t, 5, 16, 2, 1<<20)
	if len(idle) != 5 || len(attacked) != 5 || peak <= 0 || a.refused.Load() == 0 {
		t.Errorf("%d idle and %d attacked calls, peak RSS %d, %d refused", len(idle), len(attacked), peak, a.refused.Load())
	}
}
