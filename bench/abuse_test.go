package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

var (
	abuseConns = flag.Int("abuse.conns", 500, "BenchmarkUnderAbuse: idle anonymous TLS connections held")
	abuseCalls = flag.Int("abuse.calls", 8, "BenchmarkUnderAbuse: unauthenticated calls in flight at once")
	abuseSize  = flag.Int("abuse.size", 63<<20, "BenchmarkUnderAbuse: size of each unauthenticated call, in bytes")
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

// abuse is the attack of BenchmarkUnderAbuse, running until stopped.
type abuse struct {
	stop    context.CancelFunc
	wg      sync.WaitGroup
	refused atomic.Int64 // unauthenticated calls refused
	held    atomic.Int64 // idle connections open, as the attacker sees them
}

// startAbuse holds conns idle TLS connections to x (from several loopback
// addresses, as several machines would; reopening those the exporter
// closes) and keeps calls unauthenticated calls of size bytes in flight.
func startAbuse(ctx context.Context, tb testing.TB, x *tcpExporter, conns, calls, size int) *abuse {
	ctx, cancel := context.WithCancel(ctx)
	a := &abuse{stop: cancel}
	for i := range conns {
		ip := fmt.Sprintf("127.0.1.%d", 1+i%250)
		a.wg.Go(func() {
			for ctx.Err() == nil {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
				raw, err := d.DialContext(ctx, "tcp", x.addr)
				if err != nil {
					continue
				}
				c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec
				if c.HandshakeContext(ctx) == nil {
					a.held.Add(1)
					stop := context.AfterFunc(ctx, func() { c.Close() })
					_, _ = io.Copy(io.Discard, c) // until the exporter closes it
					stop()
					a.held.Add(-1)
				}
				c.Close()
			}
		})
	}
	arg := structpb.NewStringValue(strings.Repeat("x", size))
	for i := range calls {
		c := x.client(tb, fmt.Sprintf("127.0.2.%d", 1+i), "wrong")
		a.wg.Go(func() {
			for ctx.Err() == nil {
				_, err := c.DriverCall(ctx, &jumpstarterv1.DriverCallRequest{Uuid: "x", Method: "on", Args: []*structpb.Value{arg}})
				if err != nil && ctx.Err() == nil {
					a.refused.Add(1)
				}
			}
		})
	}
	return a
}

func (a *abuse) end() {
	a.stop()
	a.wg.Wait()
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
func underAbuse(ctx context.Context, tb testing.TB, calls, conns, unauth, size int) (idle, attacked []time.Duration, peak int64, a *abuse) {
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
	a = startAbuse(ctx, tb, x, conns, unauth, size)
	waitFor(ctx, 30*time.Second, func() bool { return a.held.Load() >= int64(min(conns, 64)) && a.refused.Load() > 0 })
	for range calls {
		attacked = append(attacked, callOnce(ctx, tb, "authorised", call))
	}
	a.end()
	return idle, attacked, stopRSS(), a
}

// BenchmarkUnderAbuse measures an authorised client's DriverCall on an
// exporter served over TCP with TLS and a passphrase (`jw run`, a
// subprocess), first idle, then while strangers hold -abuse.conns idle TLS
// connections (from 250 loopback addresses, reopening what the exporter
// closes) and keep -abuse.calls unauthenticated calls of -abuse.size bytes
// in flight. Reported: p50 and p99 under attack (p50-ns, p99-ns), idle
// (idle-p50-ns, idle-p99-ns), their ratios (x-idle-p50, x-idle-p99), the
// exporter's peak RSS under attack (peak-RSS-MiB), the connections the
// attacker held when last counted (held-conns) and the calls refused
// (refused-calls).
func BenchmarkUnderAbuse(b *testing.B) {
	ctx := b.Context()
	var idle, attacked []time.Duration
	var peak int64
	var a *abuse
	for b.Loop() {
		i, at, p, ab := underAbuse(ctx, b, 1000, *abuseConns, *abuseCalls, *abuseSize)
		idle, attacked, peak, a = append(idle, i...), append(attacked, at...), max(peak, p), ab
	}
	reportPair(b, "idle", attacked, idle, 50, 99)
	b.ReportMetric(float64(peak)/mib, "peak-RSS-MiB")
	b.ReportMetric(float64(a.refused.Load()), "refused-calls")
}

// TestAbuseBenchmark runs BenchmarkUnderAbuse's measurement at a tiny
// scale, to check that it works.
func TestAbuseBenchmark(t *testing.T) {
	idle, attacked, peak, a := underAbuse(t.Context(), t, 5, 16, 2, 1<<20)
	if len(idle) != 5 || len(attacked) != 5 || peak <= 0 || a.refused.Load() == 0 {
		t.Errorf("%d idle and %d attacked calls, peak RSS %d, %d refused", len(idle), len(attacked), peak, a.refused.Load())
	}
}
