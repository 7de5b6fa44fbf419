package bench

import (
	"context"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// relayCaller starts the floor of a two-hop call as separate processes: the
// raw gRPC relay (jumpwire-bench-relay, no TLS, no decoding) and, as its
// child, the bare plugin. It returns a caller of the plugin's Call through
// the relay. Everything stops at the end of the test.
func relayCaller(tb testing.TB) caller {
	tb.Helper()
	relay := testbin.Build(tb, "./bench/internal/bareplugin/cmd/jumpwire-bench-relay")
	sock := socketPath(tb, "relay.sock")
	cmd := exec.Command(relay, sock, barePlugin(tb))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-servingLine(stdout):
	case <-exited:
		tb.Fatal("the relay exited before serving")
	case <-time.After(30 * time.Second):
		tb.Fatal("the relay did not serve within 30s")
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	req := &pluginv1.CallRequest{Method: "state"}
	return func(ctx context.Context) (*structpb.Value, error) {
		var resp pluginv1.CallResponse
		if err := conn.Invoke(ctx, pluginv1.Driver_Call_FullMethodName, req, &resp); err != nil {
			return nil, err
		}
		return resp.Result, nil
	}
}

// jwProcessCaller runs `jw run` as a process of its own serving one mock
// power switch, and returns a caller of its "state" method.
func jwProcessCaller(tb testing.TB) caller {
	tb.Helper()
	s := runJW(tb.Context(), tb, exporterConfig(tb, 1), testbin.PluginDir(tb, "power"), 1)
	return power00State(tb, dial(tb, s.sock))
}

// callsPerSecond makes calls with n concurrent callers for d and returns
// the rate of answered calls.
func callsPerSecond(ctx context.Context, tb testing.TB, name string, call caller, n int, d time.Duration) float64 {
	var done atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := call(ctx); err != nil {
					// gRPC may see the window's deadline pass a moment
					// before the context says so.
					if ctx.Err() == nil && status.Code(err) != codes.DeadlineExceeded {
						failed.Store(err)
					}
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatalf("%s: DriverCall: %v", name, err)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

// BenchmarkDriverCallConcurrent measures unary DriverCalls through an
// exporter running as a process of its own (`jw run`, then the power
// plugin), against the floor of two hops: a raw gRPC relay process and a
// bare go-plugin plugin process behind it (no TLS, no decoding in the
// relay). Each iteration runs a one-second window of 16 concurrent callers
// on each, alternating which goes first, then 200 calls of one caller on
// each. Reported: the throughputs (calls/s, floor-calls/s) and their ratio
// (x-floor-calls/s), and the single caller's p50 (p50-ns, floor-p50-ns,
// x-floor-p50).
func BenchmarkDriverCallConcurrent(b *testing.B) {
	jw, floor := jwProcessCaller(b), relayCaller(b)
	ctx := b.Context()
	for range 200 {
		callOnce(ctx, b, "jumpwire", jw)
		callOnce(ctx, b, "floor", floor)
	}
	var jwRates, floorRates []float64
	var jws, floors []time.Duration
	for b.Loop() {
		first, second, fr, sr := jw, floor, &jwRates, &floorRates
		if len(jwRates)%2 == 1 {
			first, second, fr, sr = floor, jw, &floorRates, &jwRates
		}
		*fr = append(*fr, callsPerSecond(ctx, b, "first", first, 16, time.Second))
		*sr = append(*sr, callsPerSecond(ctx, b, "second", second, 16, time.Second))
		for range 100 {
			jws = append(jws, callOnce(ctx, b, "jumpwire", jw))
			floors = append(floors, callOnce(ctx, b, "floor", floor))
			floors = append(floors, callOnce(ctx, b, "floor", floor))
			jws = append(jws, callOnce(ctx, b, "jumpwire", jw))
		}
	}
	j, f := medianFloat(jwRates), medianFloat(floorRates)
	b.ReportMetric(j, "calls/s")
	b.ReportMetric(f, "floor-calls/s")
	b.ReportMetric(j/f, "x-floor-calls/s")
	reportPair(b, "floor", jws, floors, 50)
}
