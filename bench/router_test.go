package bench

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/controllertest"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// leased is an exporter in controller mode, leased through the controller
// double, with two clients of the same lease: one through the router, one
// straight to the exporter over TCP+TLS.
type leased struct {
	e              *exporter.Exporter
	d              *controllertest.Double
	router, direct *client.Client
}

// controlledConfig writes an exporter file for the double with the given
// export section (indented by two spaces).
func controlledConfig(tb testing.TB, d *controllertest.Double, token, export string) string {
	tb.Helper()
	cfg := fmt.Sprintf(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: lab, name: bench}
endpoint: %q
token: %q
tls: {ca: %q}
export:
`, d.ControllerAddr(), token, base64.StdEncoding.EncodeToString(d.CA())) + export
	p := filepath.Join(tb.TempDir(), "exporter.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// serveControlled starts an exporter in controller mode with the double
// and waits until it is AVAILABLE. Everything stops at the end of the test.
func serveControlled(tb testing.TB, export string, pluginDir string) (*exporter.Exporter, *controllertest.Double) {
	tb.Helper()
	d, err := controllertest.New(controllertest.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	token := d.AddExporter("lab", "bench")
	e, err := exporter.New(tb.Context(), exporter.Options{ConfigFile: controlledConfig(tb, d, token, export), PluginDirs: []string{pluginDir}})
	if err != nil {
		tb.Fatalf("exporter.New: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	lis, err := exporter.Listen("unix://" + socketPath(tb, "e.sock"))
	if err != nil {
		tb.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(sctx, lis) }()
	tb.Cleanup(func() { scancel(); <-done })
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	if err := d.WaitStatus(ctx, "bench", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE); err != nil {
		tb.Fatal(err)
	}
	return e, d
}

// assign leases the exporter and waits until it is LEASE_READY; it
// returns the lease and how long that took.
func assign(ctx context.Context, tb testing.TB, d *controllertest.Double) (string, time.Duration) {
	tb.Helper()
	start := time.Now()
	lease, err := d.AssignLease("bench", "bench-client")
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.WaitStatus(ctx, "bench", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY); err != nil {
		tb.Fatal(err)
	}
	return lease, time.Since(start)
}

// leasedExporter starts an exporter with a power switch and a sink in
// controller mode, leases it, and connects both clients.
func leasedExporter(tb testing.TB) *leased {
	tb.Helper()
	dir := sinkPluginDir(tb)
	if err := os.Link(testbin.Build(tb, "./drivers/power/cmd/jumpwire-driver-power"), filepath.Join(dir, "jumpwire-driver-power")); err != nil {
		tb.Fatal(err)
	}
	e, d := serveControlled(tb, "  power:\n    type: power\n  sink:\n    type: sink\n", dir)
	lease, _ := assign(tb.Context(), tb, d)

	conn, err := d.Connect(lease)
	if err != nil {
		tb.Fatal(err)
	}
	router := client.FromConn(conn, "lease "+lease)
	tb.Cleanup(func() { _ = router.Close() })

	// The same exporter, straight over TCP+TLS: the same session and plugin
	// processes, one hop fewer.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := exporter.SelfSignedCertificate(exporter.Address{Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.Serve(ctx, lis, exporter.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}()
	tb.Cleanup(func() { cancel(); <-done })
	direct, err := client.Dial(tb.Context(), "tcp://"+lis.Addr().String(), client.WithTLSFingerprint(exporter.Fingerprint(cert.Certificate[0])))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = direct.Close() })
	return &leased{e: e, d: d, router: router, direct: direct}
}

// lookup finds the uuid of the driver at path through c.
func lookup(tb testing.TB, c *client.Client, path string) string {
	tb.Helper()
	tree, err := c.Tree(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	drv, err := tree.Lookup(path)
	if err != nil {
		tb.Fatal(err)
	}
	return drv.UUID
}

// clientCaller calls method on uuid through c.
func clientCaller(c *client.Client, uuid, method string) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) { return c.Call(ctx, uuid, method) }
}

// timedCall makes one call and fails tb unless it answers false.
func timedCall(ctx context.Context, tb testing.TB, name string, call func(context.Context) (any, error)) time.Duration {
	start := time.Now()
	v, err := call(ctx)
	took := time.Since(start)
	if err != nil || v != false {
		tb.Fatalf("%s: state = %v, %v; want false", name, v, err)
	}
	return took
}

// clientStreamer streams to the sink through c.
func clientStreamer(c *client.Client, uuid string) streamer {
	return func(ctx context.Context, method string, size, chunk int) (time.Duration, error) {
		s, err := c.Stream(ctx, uuid, method)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		return transfer(method, size, chunk, s.Write, s.CloseWrite, s.ReadFrame)
	}
}

// BenchmarkRouter measures what the router costs a leased client: the same
// client library, the same exporter and plugin processes, through the
// controller double's router (client -> router stream over TLS -> exporter
// -> plugin) against straight to the exporter over TCP+TLS.
//
// DriverCall: a unary call of the power switch's "state", alternating
// which path goes first; reported p50 and p99 through the router (p50-ns,
// p99-ns), direct (direct-p50-ns, direct-p99-ns), and their ratios.
// Stream: 32 MiB to the sink driver in 64 KiB writes; reported the median
// throughput through the router (MB/s), direct (direct-MB/s) and the ratio
// (x-direct; 1 means as fast as direct).
func BenchmarkRouter(b *testing.B) {
	l := leasedExporter(b)
	power, sink := lookup(b, l.router, "power"), lookup(b, l.router, "sink")
	b.Run("DriverCall", func(b *testing.B) {
		ctx := b.Context()
		viaRouter, direct := clientCaller(l.router, power, "state"), clientCaller(l.direct, power, "state")
		for range 200 {
			timedCall(ctx, b, "router", viaRouter)
			timedCall(ctx, b, "direct", direct)
		}
		var rs, ds []time.Duration
		for b.Loop() {
			if len(rs)%2 == 0 {
				rs = append(rs, timedCall(ctx, b, "router", viaRouter))
				ds = append(ds, timedCall(ctx, b, "direct", direct))
			} else {
				ds = append(ds, timedCall(ctx, b, "direct", direct))
				rs = append(rs, timedCall(ctx, b, "router", viaRouter))
			}
		}
		reportPair(b, "direct", rs, ds, 50, 99)
	})
	b.Run("Stream", func(b *testing.B) {
		ctx := b.Context()
		viaRouter, direct := clientStreamer(l.router, sink), clientStreamer(l.direct, sink)
		one := func(name string, s streamer) float64 {
			d, err := s(ctx, "sink", streamPayload, 64<<10)
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			return mbps(streamPayload, d)
		}
		one("router", viaRouter)
		one("direct", direct)
		var rs, ds []float64
		for b.Loop() {
			if len(rs)%2 == 0 {
				rs, ds = append(rs, one("router", viaRouter)), append(ds, one("direct", direct))
			} else {
				ds, rs = append(ds, one("direct", direct)), append(rs, one("router", viaRouter))
			}
		}
		mr, md := medianFloat(rs), medianFloat(ds)
		b.ReportMetric(mr, "MB/s")
		b.ReportMetric(md, "direct-MB/s")
		b.ReportMetric(mr/md, "x-direct")
	})
}

// BenchmarkLeaseReady measures the time from the controller assigning a
// lease (the exporter hears `leased: true` on its Status stream) to the
// controller holding LEASE_READY, for an exporter of 20 power drivers
// without hooks. The lease's fresh session was started when the previous
// lease ended, as it is when leases are not back to back; ns/op includes
// the lease's end and that restart. Reported: p50 and p99 (p50-ns, p99-ns).
func BenchmarkLeaseReady(b *testing.B) {
	var export strings.Builder
	for i := range 20 {
		fmt.Fprintf(&export, "  power%02d:\n    type: power\n", i)
	}
	e, d := serveControlled(b, export.String(), testbin.PluginDir(b, "power"))
	ctx := b.Context()
	var ds []time.Duration
	for b.Loop() {
		for e.Session() == nil { // the next fresh session is starting
			time.Sleep(time.Millisecond)
		}
		lease, took := assign(ctx, b, d)
		ds = append(ds, took)
		d.EndLease(lease)
		if err := d.WaitStatus(ctx, "bench", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(percentile(ds, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(ds, 99).Nanoseconds()), "p99-ns")
}
