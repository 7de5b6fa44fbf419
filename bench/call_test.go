package bench

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/bench/internal/bareplugin"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// caller makes one DriverCall and returns its result.
type caller func(ctx context.Context) (*structpb.Value, error)

// dial returns a jumpstarter.v1 client of the unix socket sock, closed at
// the end of the test.
func dial(tb testing.TB, sock string) jumpstarterv1.ExporterServiceClient {
	tb.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return jumpstarterv1.NewExporterServiceClient(conn)
}

// driverCall returns a caller of method on uuid through c.
func driverCall(c jumpstarterv1.ExporterServiceClient, uuid, method string) caller {
	req := &jumpstarterv1.DriverCallRequest{Uuid: uuid, Method: method}
	return func(ctx context.Context) (*structpb.Value, error) {
		resp, err := c.DriverCall(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Result, nil
	}
}

// jumpwireCaller starts an exporter (in this process, as a client would
// reach it: on a unix socket) serving one mock power switch in its plugin
// process, and returns a caller of its "state" method.
func jumpwireCaller(tb testing.TB) caller {
	tb.Helper()
	e, err := exporter.New(tb.Context(), exporter.Options{
		ConfigFile: exporterConfig(tb, 1),
		PluginDirs: []string{testbin.PluginDir(tb, "power")},
	})
	if err != nil {
		tb.Fatalf("exporter.New: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	sock := socketPath(tb, "e.sock")
	lis, err := exporter.Listen("unix://" + sock)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, lis) }()
	tb.Cleanup(func() { cancel(); <-done })

	return power00State(tb, dial(tb, sock))
}

// power00State returns a caller of the "state" method of the instance
// power00 of the exporter c reaches.
func power00State(tb testing.TB, c jumpstarterv1.ExporterServiceClient) caller {
	tb.Helper()
	r, err := c.GetReport(tb.Context(), &emptypb.Empty{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range r.Reports {
		if d.Labels[exporter.LabelName] == "power00" {
			return driverCall(c, d.Uuid, "state")
		}
	}
	tb.Fatalf("the exporter reports no power00: %v", r.Reports)
	return nil
}

// proxy is the floor's first hop: a jumpstarter.v1 DriverCall forwarded as
// is to a plugin's Call, and its result sent back.
type proxy struct {
	jumpstarterv1.UnimplementedExporterServiceServer
	rpc pluginv1.DriverClient
}

func (p *proxy) DriverCall(ctx context.Context, req *jumpstarterv1.DriverCallRequest) (*jumpstarterv1.DriverCallResponse, error) {
	resp, err := p.rpc.Call(ctx, &pluginv1.CallRequest{Method: req.Method, Args: req.Args})
	if err != nil {
		return nil, err
	}
	return &jumpstarterv1.DriverCallResponse{Uuid: req.Uuid, Result: resp.Result}, nil
}

// floorCaller starts the floor of a DriverCall in the same topology as
// jumpwireCaller: a bare gRPC server on a unix socket in this process that
// forwards each call to a bare go-plugin plugin process (unix socket,
// AutoMTLS). It returns a caller of it.
func floorCaller(tb testing.TB) caller {
	tb.Helper()
	conn := serveFloor(tb, func(srv *grpc.Server, rpc pluginv1.DriverClient) {
		jumpstarterv1.RegisterExporterServiceServer(srv, &proxy{rpc: rpc})
	})
	return driverCall(jumpstarterv1.NewExporterServiceClient(conn), "floor", "state")
}

// serveFloor launches the bare go-plugin plugin and serves, on a unix socket
// in this process, the first hop that register puts in front of it: the
// floor's topology, the same as jumpwire's. It returns a client connection
// to that socket; everything stops when the test ends.
func serveFloor(tb testing.TB, register func(*grpc.Server, pluginv1.DriverClient)) *grpc.ClientConn {
	tb.Helper()
	p, err := bareplugin.Launch(barePlugin(tb))
	if err != nil {
		tb.Fatalf("launch the bare plugin: %v", err)
	}
	tb.Cleanup(p.Kill)
	sock := socketPath(tb, "floor.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv, p.RPC)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("floor: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// callOnce makes one call and fails tb unless it answers false (a switch
// that is off), returning how long it took.
func callOnce(ctx context.Context, tb testing.TB, name string, call caller) time.Duration {
	var (
		v   *structpb.Value
		err error
	)
	d := timed(func() { v, err = call(ctx) })
	if err != nil {
		tb.Fatalf("%s: DriverCall: %v", name, err)
	}
	if b, ok := v.GetKind().(*structpb.Value_BoolValue); !ok || b.BoolValue {
		tb.Fatalf("%s: DriverCall answered %v, want false", name, v)
	}
	return d
}

// BenchmarkDriverCall measures the round trip of a unary DriverCall from a
// client through the exporter to a power plugin process and back, against
// its floor: the same two hops (a unix socket to a gRPC server in this
// process, then a unix socket to a plugin process, without TLS)
// with nothing but a forwarding gRPC handler and a bare go-plugin plugin.
// Each iteration makes one call of each kind, alternating which goes first,
// so both see the same machine; ns/op is the pair. Reported: p50 and p99 of
// jumpwire's calls (p50-ns, p99-ns), of the floor's (floor-p50-ns,
// floor-p99-ns), and their ratios (x-floor-p50, x-floor-p99).
func BenchmarkDriverCall(b *testing.B) {
	jw, floor := jumpwireCaller(b), floorCaller(b)
	ctx := b.Context()
	for range 200 { // warm up connections and both processes' runtimes
		callOnce(ctx, b, "jumpwire", jw)
		callOnce(ctx, b, "floor", floor)
	}
	var jws, floors []time.Duration
	for b.Loop() {
		if len(jws)%2 == 0 {
			jws = append(jws, callOnce(ctx, b, "jumpwire", jw))
			floors = append(floors, callOnce(ctx, b, "floor", floor))
		} else {
			floors = append(floors, callOnce(ctx, b, "floor", floor))
			jws = append(jws, callOnce(ctx, b, "jumpwire", jw))
		}
	}
	reportPair(b, "floor", jws, floors, 50, 99)
}

// reportPair reports percentiles of jumpwire's durations and of the
// baseline's, and their ratios: "p50-ns", "<base>-p50-ns", "x-<base>-p50".
func reportPair(b *testing.B, base string, jw, baseline []time.Duration, ps ...float64) {
	for _, p := range ps {
		pj, pb := percentile(jw, p), percentile(baseline, p)
		name := "p" + strconv.FormatFloat(p, 'f', -1, 64)
		b.ReportMetric(float64(pj.Nanoseconds()), name+"-ns")
		b.ReportMetric(float64(pb.Nanoseconds()), base+"-"+name+"-ns")
		b.ReportMetric(float64(pj)/float64(pb), "x-"+base+"-"+name)
	}
}
