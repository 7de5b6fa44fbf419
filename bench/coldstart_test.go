package bench

import (
	"context"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/bench/internal/bareplugin"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/types/known/structpb"
)

// started is a plugin process started by a cold-start measurement.
type started struct {
	took time.Duration // from launch to the first call's answer
	pid  int
	stop func()
}

// startPower starts a power instance as the exporter does (host.Start:
// launch, handshake, describe, configure) and makes its first call. The
// process is stopped at the end of the test if not before.
func startPower(ctx context.Context, tb testing.TB, binary string) started {
	tb.Helper()
	spec := host.Spec{Binary: binary, Type: "power", Name: "power", Path: "power", Config: &structpb.Struct{}}
	var (
		inst *host.Instance
		v    *structpb.Value
		err  error
	)
	took := timed(func() {
		inst, err = host.Start(ctx, spec, host.LaunchOptions{})
		if err == nil {
			v, err = inst.Call(ctx, "state", nil)
		}
	})
	if inst != nil {
		tb.Cleanup(func() { _ = inst.Stop(context.Background()) })
	}
	if err != nil {
		tb.Fatalf("power plugin: %v", err)
	}
	if v.GetKind() == nil {
		tb.Fatalf("power plugin: state answered %v", v)
	}
	return started{took: took, pid: inst.Pid(), stop: func() { _ = inst.Stop(context.Background()) }}
}

// startBare launches the bare go-plugin plugin (launch, handshake) and makes
// one call. The process is killed at the end of the test if not before.
func startBare(ctx context.Context, tb testing.TB, binary string) started {
	tb.Helper()
	var (
		p    *bareplugin.Plugin
		resp *pluginv1.CallResponse
		err  error
	)
	took := timed(func() {
		p, err = bareplugin.Launch(binary)
		if err == nil {
			resp, err = p.RPC.Call(ctx, &pluginv1.CallRequest{Method: "state"})
		}
	})
	if p != nil {
		tb.Cleanup(p.Kill)
	}
	if err != nil {
		tb.Fatalf("bare plugin: %v", err)
	}
	if resp.GetResult().GetKind() == nil {
		tb.Fatalf("bare plugin: call answered %v", resp)
	}
	return started{took: took, pid: p.Pid(), stop: p.Kill}
}

// BenchmarkColdStart measures how long a power instance takes from nothing
// to its first answer (launch, go-plugin handshake, peer-credential checks, describe,
// configure, first call, as host.Start and Instance.Call do it), against
// launching a bare go-plugin plugin without TLS and making one call. Each
// iteration starts one of each, alternating which goes first, and stops
// them (ns/op includes the stops). Reported: p50 of each (p50-ns,
// bare-p50-ns) and the ratio (x-bare-p50).
func BenchmarkColdStart(b *testing.B) {
	power, bare := powerPlugin(b), barePlugin(b)
	ctx := b.Context()
	startPower(ctx, b, power).stop() // warm the page cache with both binaries
	startBare(ctx, b, bare).stop()
	var jws, bares []time.Duration
	for b.Loop() {
		var j, p started
		if len(jws)%2 == 0 {
			j = startPower(ctx, b, power)
			p = startBare(ctx, b, bare)
		} else {
			p = startBare(ctx, b, bare)
			j = startPower(ctx, b, power)
		}
		j.stop()
		p.stop()
		jws, bares = append(jws, j.took), append(bares, p.took)
	}
	reportPair(b, "bare", jws, bares, 50)
}
