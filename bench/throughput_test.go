package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/bench/internal/bareplugin"
	"github.com/jumpwire-dev/jumpwire/client"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// streamer moves size bytes through a byte stream, written in chunks of
// chunk bytes, to the driver's "sink" or "echo" method, and returns how long
// the data took: from the first write until the sink's byte count, or the
// last echoed byte, has arrived (opening the stream is not included).
type streamer func(ctx context.Context, method string, size, chunk int) (time.Duration, error)

// jumpwireStreamer streams through an exporter in this process (on a unix
// socket, as a client reaches it) to the sink driver in its plugin process,
// with client.Stream.
func jumpwireStreamer(tb testing.TB) streamer {
	tb.Helper()
	sock := serveInProcess(tb, writeConfig(tb, "  sink:\n    type: sink\n"), sinkPluginDir(tb))
	c, d := dialDriver(tb.Context(), tb, sock, "sink")
	return func(ctx context.Context, method string, size, chunk int) (time.Duration, error) {
		s, err := c.Stream(ctx, d.UUID, method)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		return transfer(method, size, chunk, s.Write, s.CloseWrite, s.ReadFrame)
	}
}

// transfer writes size bytes in chunks with write, half-closes, and reads
// frames to the end: the byte count for "sink" (checked), the echoed bytes
// for "echo" (counted, while writing goes on).
func transfer(method string, size, chunk int, write func([]byte) (int, error), closeWrite func() error, readFrame func() ([]byte, error)) (time.Duration, error) {
	payload := pattern(chunk)
	start := time.Now()
	wrote := make(chan error, 1)
	go func() {
		for sent := 0; sent < size; sent += chunk {
			if _, err := write(payload[:min(chunk, size-sent)]); err != nil {
				wrote <- fmt.Errorf("write: %w", err)
				return
			}
		}
		wrote <- closeWrite()
	}()
	var got []byte
	n := 0
	for {
		f, err := readFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		n += len(f)
		if method == "sink" {
			got = append(got, f...)
		}
	}
	took := time.Since(start)
	if err := <-wrote; err != nil {
		return 0, err
	}
	switch {
	case method == "sink" && string(got) != strconv.Itoa(size):
		return 0, fmt.Errorf("sink counted %q bytes, want %d", got, size)
	case method == "echo" && n != size:
		return 0, fmt.Errorf("echo sent back %d bytes, want %d", n, size)
	}
	return took, nil
}

// pattern returns n bytes that are not all zero.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// floorRouter is the floor's first hop for byte streams: a RouterService
// that opens a Stream to the bare plugin for the method named in the request
// header, and passes frames through both ways, one goroutine per direction.
type floorRouter struct {
	jumpstarterv1.UnimplementedRouterServiceServer
	rpc pluginv1.DriverClient
}

func (f *floorRouter) Stream(cs jumpstarterv1.RouterService_StreamServer) error {
	md, _ := metadata.FromIncomingContext(cs.Context())
	var req struct {
		Method string `json:"method"`
	}
	if v := md.Get(client.RequestHeader); len(v) != 1 || json.Unmarshal([]byte(v[0]), &req) != nil {
		return status.Error(codes.InvalidArgument, "floor: bad request header")
	}
	ctx := metadata.AppendToOutgoingContext(cs.Context(), bareplugin.MethodHeader, req.Method)
	ps, err := f.rpc.Stream(ctx)
	if err != nil {
		return err
	}
	if _, err := ps.Header(); err != nil {
		return err
	}
	if err := cs.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	go func() {
		for {
			m, err := cs.Recv()
			if err != nil {
				_ = ps.CloseSend()
				return
			}
			if err := ps.Send(&pluginv1.Frame{Payload: m.Payload, Kind: pluginv1.FrameKind(m.FrameType)}); err != nil {
				return
			}
			if m.FrameType == jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY {
				_ = ps.CloseSend()
				return
			}
		}
	}()
	for {
		m, err := ps.Recv()
		if errors.Is(err, io.EOF) {
			return status.Error(codes.Aborted, "stream ended by the plugin")
		}
		if err != nil {
			return err
		}
		if err := cs.Send(&jumpstarterv1.StreamResponse{Payload: m.Payload, FrameType: jumpstarterv1.FrameType(m.Kind)}); err != nil {
			return err
		}
	}
}

// floorStreamer starts the floor of a byte stream in the same topology as
// jumpwireStreamer: floorRouter on a unix socket in this process, in front
// of the bare go-plugin plugin (unix socket, no TLS), reached with the
// generated RouterService client and nothing else.
func floorStreamer(tb testing.TB) streamer {
	tb.Helper()
	conn := serveFloor(tb, func(srv *grpc.Server, rpc pluginv1.DriverClient) {
		jumpstarterv1.RegisterRouterServiceServer(srv, &floorRouter{rpc: rpc})
	})
	rc := jumpstarterv1.NewRouterServiceClient(conn)
	return func(ctx context.Context, method string, size, chunk int) (time.Duration, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, client.RequestHeader,
			`{"kind":"driver","uuid":"floor","method":"`+method+`"}`)
		rpc, err := rc.Stream(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := rpc.Header(); err != nil {
			return 0, err
		}
		write := func(p []byte) (int, error) {
			return len(p), rpc.Send(&jumpstarterv1.StreamRequest{Payload: p})
		}
		closeWrite := func() error {
			if err := rpc.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY}); err != nil {
				return err
			}
			return rpc.CloseSend()
		}
		readFrame := func() ([]byte, error) {
			m, err := rpc.Recv()
			if err != nil {
				return nil, err
			}
			if m.FrameType == jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY {
				if _, err := rpc.Recv(); status.Code(err) != codes.Aborted {
					return nil, fmt.Errorf("after GOAWAY: %w", err)
				}
				return nil, io.EOF
			}
			return m.Payload, nil
		}
		return transfer(method, size, chunk, write, closeWrite, readFrame)
	}
}

// streamChunks are the write sizes the throughput benchmarks cover.
var streamChunks = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"32KiB", 32 << 10}, {"256KiB", 256 << 10}, {"1MiB", 1 << 20}}

// streamPayload is what one transfer of BenchmarkStreamThroughput moves.
const streamPayload = 32 << 20

// BenchmarkStreamThroughput measures a byte stream from a client through the
// exporter to a plugin (client.Stream -> exporter in this process on a unix
// socket -> the sink driver's plugin process over a unix socket with peer credentials),
// against its floor: the same two hops with a pass-through RouterService in
// front of the bare go-plugin plugin, reached with the generated client.
//
// sink/<chunk>: 32 MiB written in chunks of that size, then a half-close;
// the driver counts the bytes and answers the count. echo/<chunk>: the same,
// with the driver sending every byte back (each byte crosses both hops twice;
// the figure is payload bytes per second one way).
//
// Each iteration makes one transfer of each kind, alternating which goes
// first; ns/op is the pair. Reported: the median throughput of jumpwire's
// transfers (MB/s, 10^6 bytes per second), the floor's (floor-MB/s), and
// their ratio (x-floor; higher is better, 1 means as fast as the floor).
func BenchmarkStreamThroughput(b *testing.B) {
	jw, floor := jumpwireStreamer(b), floorStreamer(b)
	for _, method := range []string{"sink", "echo"} {
		b.Run(method, func(b *testing.B) {
			for _, c := range streamChunks {
				b.Run(c.name, func(b *testing.B) {
					benchStreams(b, jw, floor, method, streamPayload, c.size)
				})
			}
		})
	}
}

// benchStreams runs the interleaved transfers of one sub-benchmark of
// BenchmarkStreamThroughput and reports their figures.
func benchStreams(b *testing.B, jw, floor streamer, method string, size, chunk int) {
	ctx := b.Context()
	one := func(name string, s streamer) float64 {
		d, err := s(ctx, method, size, chunk)
		if err != nil {
			b.Fatalf("%s: %s: %v", name, method, err)
		}
		return mbps(int64(size), d)
	}
	one("jumpwire", jw) // warm up: connections, flow-control windows, buffers
	one("floor", floor)
	var jws, floors []float64
	for b.Loop() {
		if len(jws)%2 == 0 {
			jws = append(jws, one("jumpwire", jw))
			floors = append(floors, one("floor", floor))
		} else {
			floors = append(floors, one("floor", floor))
			jws = append(jws, one("jumpwire", jw))
		}
	}
	mj, mf := medianFloat(jws), medianFloat(floors)
	b.ReportMetric(mj, "MB/s")
	b.ReportMetric(mf, "floor-MB/s")
	b.ReportMetric(mj/mf, "x-floor")
}
