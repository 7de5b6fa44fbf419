package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/client"
)

// idleStreams is what measureIdleStreams finds.
type idleStreams struct {
	exporter, plugin [2]int64 // VmRSS before and after opening the streams
	open             []time.Duration
}

// measureIdleStreams runs `jw run` (a subprocess) serving one sink driver,
// opens one stream to its "sink" method, lets the processes settle and
// reads their VmRSS; then opens n more streams, each idle once open (the
// driver waits in Read, the client sends nothing), lets them settle and
// reads it again. Every stream is checked to be still open, then closed.
func measureIdleStreams(ctx context.Context, tb testing.TB, n int) idleStreams {
	tb.Helper()
	// The session's stream limit (64 by default) would stop the test early.
	jw := runJW(ctx, tb, writeConfig(tb, "  sink:\n    type: sink\n"), sinkPluginDir(tb), 1,
		"--max-streams", strconv.Itoa(n+1), "--max-streams-per-client", strconv.Itoa(n+1))
	defer jw.Stop()
	c, d := dialDriver(ctx, tb, jw.sock, "sink")
	var streams []*client.Stream
	defer func() {
		for _, s := range streams {
			_ = s.Close()
		}
	}()
	open := func() time.Duration {
		var (
			s   *client.Stream
			err error
		)
		took := timed(func() { s, err = c.Stream(ctx, d.UUID, "sink") })
		if err != nil {
			tb.Fatalf("open stream %d: %v", len(streams), err)
		}
		streams = append(streams, s)
		return took
	}
	open() // the first stream sets up what all share (connections, pools)
	pids := []int{jw.pid, jw.plugins[0].pid}
	before := idleRSS(ctx, tb, pids...)
	m := idleStreams{}
	for range n {
		m.open = append(m.open, open())
	}
	after := idleRSS(ctx, tb, pids...)
	for i, s := range streams {
		select {
		case <-s.Done():
			tb.Fatalf("stream %d ended while idle: %v", i, s.Err())
		default:
		}
	}
	m.exporter = [2]int64{before[0], after[0]}
	m.plugin = [2]int64{before[1], after[1]}
	return m
}

// idleStreamCount is how many streams BenchmarkIdleStreams opens.
const idleStreamCount = 1000

// BenchmarkIdleStreams measures the memory an open, idle byte stream costs:
// `jw run` (a subprocess) serving one sink driver, whose single plugin
// process serves every stream, with 1,000 streams opened to it from this
// process and left idle. Reported: the growth of VmRSS per stream,
// (after - before) / 1000, of the exporter (exporter-KiB/stream), of the
// plugin (plugin-KiB/stream) and of both (total-KiB/stream); the processes'
// VmRSS before and after (exporter-before-MiB, ...); and the median time to
// open one stream (open-p50-ns). No baseline: absolute figures. Each
// iteration starts a fresh exporter; ns/op includes everything.
func BenchmarkIdleStreams(b *testing.B) {
	ctx := b.Context()
	var ms []idleStreams
	for b.Loop() {
		ms = append(ms, measureIdleStreams(ctx, b, idleStreamCount))
	}
	per := func(f func(idleStreams) [2]int64) float64 {
		var vs []int64
		for _, m := range ms {
			r := f(m)
			vs = append(vs, r[1]-r[0])
		}
		return float64(median(vs)) / 1024 / idleStreamCount
	}
	exp := func(m idleStreams) [2]int64 { return m.exporter }
	plug := func(m idleStreams) [2]int64 { return m.plugin }
	b.ReportMetric(per(exp), "exporter-KiB/stream")
	b.ReportMetric(per(plug), "plugin-KiB/stream")
	b.ReportMetric(per(func(m idleStreams) [2]int64 {
		return [2]int64{m.exporter[0] + m.plugin[0], m.exporter[1] + m.plugin[1]}
	}), "total-KiB/stream")
	last := ms[len(ms)-1]
	b.ReportMetric(float64(last.exporter[0])/mib, "exporter-before-MiB")
	b.ReportMetric(float64(last.exporter[1])/mib, "exporter-after-MiB")
	b.ReportMetric(float64(last.plugin[0])/mib, "plugin-before-MiB")
	b.ReportMetric(float64(last.plugin[1])/mib, "plugin-after-MiB")
	var opens []time.Duration
	for _, m := range ms {
		opens = append(opens, m.open...)
	}
	b.ReportMetric(float64(percentile(opens, 50).Nanoseconds()), "open-p50-ns")
}
