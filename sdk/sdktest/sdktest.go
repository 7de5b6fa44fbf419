// Package sdktest runs a driver in-process over real gRPC, speaking the same
// plugin protocol the exporter speaks, so a driver's tests need no exporter
// and no subprocess:
//
//	d := sdktest.Start(t, power.Type, map[string]any{"on": true})
//	if _, err := d.Call(ctx, "off"); err != nil { ... }
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/internal/harness"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// Instance is a configured driver instance served in-process.
type Instance struct {
	// RPC is the plugin-protocol client, for tests that need the raw protocol.
	RPC pluginv1.DriverClient
	// Configured is what the driver answered to its config.
	Configured *pluginv1.ConfigureResponse

	stop     func() // set by Open
	stopOnce sync.Once
}

// Serve serves p in-process on a unix socket in t.TempDir and returns a
// client of the plugin protocol. Everything stops when the test ends.
func Serve(t testing.TB, p sdk.Plugin) pluginv1.DriverClient {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: "driver", Output: t.Output(), Level: hclog.Debug})
	rpc, stop, err := serve(p, logger, t.TempDir())
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	t.Cleanup(stop)
	return rpc
}

// serve serves p on a unix socket in dir. stop closes the client and stops
// the server.
func serve(p sdk.Plugin, logger hclog.Logger, dir string) (rpc pluginv1.DriverClient, stop func(), err error) {
	srv, err := harness.NewServer(p, logger)
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("unix", filepath.Join(dir, "driver.sock"))
	if err != nil {
		return nil, nil, err
	}
	gs := grpc.NewServer(append(protocol.ServerOptions(protocol.Unix), protocol.MarkErrors()...)...)
	protocol.RegisterService(gs, &pluginv1.Driver_ServiceDesc, srv)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(),
		append(protocol.DialOptions(protocol.Unix), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		gs.Stop()
		return nil, nil, err
	}
	return pluginv1.NewDriverClient(conn), func() {
		conn.Close()
		gs.Stop()
	}, nil
}

// Configure serves typ and configures an instance with cfg (any value that
// encodes to a JSON object: a map, a struct, or nil). It returns the problems
// the driver found with the config as an error, one per line, each
// "key: message".
func Configure(t testing.TB, typ sdk.Type, cfg any) (*Instance, error) {
	t.Helper()
	st, err := toStruct(cfg)
	if err != nil {
		t.Fatalf("sdktest: config: %v", err)
	}
	rpc := Serve(t, sdk.Plugin{Version: "test", Drivers: []sdk.Type{typ}})
	return configure(t.Context(), rpc, typ, st)
}

// Open is Configure for code that has no testing.TB, such as Example
// functions: it serves typ in-process (its logs are discarded) and configures
// an instance with cfg, without resetting it. The caller must Close the
// instance.
func Open(ctx context.Context, typ sdk.Type, cfg any) (*Instance, error) {
	st, err := toStruct(cfg)
	if err != nil {
		return nil, fmt.Errorf("sdktest: config: %w", err)
	}
	dir, err := os.MkdirTemp("", "sdktest-")
	if err != nil {
		return nil, fmt.Errorf("sdktest: %w", err)
	}
	rpc, stop, err := serve(sdk.Plugin{Version: "test", Drivers: []sdk.Type{typ}}, hclog.NewNullLogger(), dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sdktest: %w", err)
	}
	stopAll := func() {
		stop()
		os.RemoveAll(dir)
	}
	i, err := configure(ctx, rpc, typ, st)
	if err != nil {
		stopAll()
		return nil, err
	}
	i.stop = stopAll
	return i, nil
}

func configure(ctx context.Context, rpc pluginv1.DriverClient, typ sdk.Type, st *structpb.Struct) (*Instance, error) {
	resp, err := rpc.Configure(ctx, &pluginv1.ConfigureRequest{Type: typ.Name, Config: st, Name: typ.Name, Path: typ.Name})
	if err != nil {
		return nil, err
	}
	if len(resp.Problems) > 0 {
		var lines []string
		for _, p := range resp.Problems {
			if p.Key != "" {
				lines = append(lines, p.Key+": "+p.Message)
			} else {
				lines = append(lines, p.Message)
			}
		}
		return nil, errors.New(strings.Join(lines, "\n"))
	}
	return &Instance{RPC: rpc, Configured: resp}, nil
}

// Start is Configure that fails the test when the config is rejected, and
// resets the instance as a session would. Close runs when the test ends.
func Start(t testing.TB, typ sdk.Type, cfg any) *Instance {
	t.Helper()
	i, err := Configure(t, typ, cfg)
	if err != nil {
		t.Fatalf("sdktest: %s rejected its config: %v", typ.Name, err)
	}
	if err := i.Reset(t.Context()); err != nil {
		t.Fatalf("sdktest: reset %s: %v", typ.Name, err)
	}
	t.Cleanup(func() { _ = i.Close(context.Background()) })
	return i
}

func toStruct(v any) (*structpb.Struct, error) {
	if v == nil {
		return &structpb.Struct{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	st := &structpb.Struct{}
	if err := st.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("must encode to a JSON object: %w", err)
	}
	return st, nil
}

func toValues(args []any) ([]*structpb.Value, error) {
	out := make([]*structpb.Value, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		out[i] = &structpb.Value{}
		if err := out[i].UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
	}
	return out, nil
}

// Call calls a unary method with args (encoded as JSON) and returns its
// result as a plain Go value (nil, float64, string, bool, []any, map[string]any).
// Errors are gRPC status errors, as a client would see them.
func (i *Instance) Call(ctx context.Context, method string, args ...any) (any, error) {
	vals, err := toValues(args)
	if err != nil {
		return nil, err
	}
	resp, err := i.RPC.Call(ctx, &pluginv1.CallRequest{Method: method, Args: vals})
	if err != nil {
		return nil, err
	}
	return resp.Result.AsInterface(), nil
}

// StreamingCall calls a streaming method and yields each result as a plain Go value.
func (i *Instance) StreamingCall(ctx context.Context, method string, args ...any) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		vals, err := toValues(args)
		if err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := i.RPC.StreamingCall(ctx, &pluginv1.CallRequest{Method: method, Args: vals})
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			r, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(r.Result.AsInterface(), nil) {
				return
			}
		}
	}
}

// Close runs the driver's Close hook and, for an instance from [Open], stops
// serving it. It is idempotent; an instance from [Start] is also closed when
// its test ends.
func (i *Instance) Close(ctx context.Context) error {
	var err error
	i.stopOnce.Do(func() {
		_, err = i.RPC.Close(ctx, &pluginv1.CloseRequest{})
		if i.stop != nil {
			i.stop()
		}
	})
	return err
}

// HandOver stops the instance as the exporter does when a successor process
// replaces it within a session (a swap): Close with handover set, which a
// driver implementing sdk.HandOverer answers by leaving its device running.
// Idempotent, and exclusive with Close.
func (i *Instance) HandOver(ctx context.Context) error {
	var err error
	i.stopOnce.Do(func() {
		_, err = i.RPC.Close(ctx, &pluginv1.CloseRequest{Handover: true})
		if i.stop != nil {
			i.stop()
		}
	})
	return err
}

// Reset resets the instance.
func (i *Instance) Reset(ctx context.Context) error {
	_, err := i.RPC.Reset(ctx, &pluginv1.ResetRequest{})
	return err
}

// Conn is the client end of a byte stream opened with Stream.
type Conn struct {
	s    pluginv1.Driver_StreamClient
	rbuf []byte
	rerr error
}

// Stream opens a byte stream to method.
func (i *Instance) Stream(ctx context.Context, method string) (*Conn, error) {
	c, _, err := i.stream(ctx, method, nil)
	return c, err
}

// StreamFile opens a byte stream to method whose client data is f, handed
// over as a local file (protocol.LocalFileHeader), as the exporter hands
// over the image of a client on its machine; taken says whether the driver
// took it (else send f's bytes on the Conn, as the exporter does). Keep f
// open while the stream lasts, and half-close the Conn as a client does.
func (i *Instance) StreamFile(ctx context.Context, method string, f *os.File) (c *Conn, taken bool, err error) {
	return i.stream(ctx, method, f)
}

func (i *Instance) stream(ctx context.Context, method string, local *os.File) (*Conn, bool, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, protocol.MethodHeader, method)
	if local != nil {
		ctx = metadata.AppendToOutgoingContext(ctx, protocol.LocalFileHeader,
			fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), local.Fd()))
	}
	s, err := i.RPC.Stream(ctx)
	if err != nil {
		return nil, false, err
	}
	md, err := s.Header()
	if err != nil {
		return nil, false, err
	}
	if md == nil {
		// The driver ended the stream without opening it (no such method,
		// ...): its status is what Recv returns.
		_, err := s.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("sdktest: %s: the stream ended before it opened", method)
		}
		return nil, false, err
	}
	return &Conn{s: s}, len(md.Get(protocol.LocalFileTakenHeader)) > 0, nil
}

// Read reads what the driver wrote; io.EOF once the driver closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		f, err := c.s.Recv()
		switch {
		case err != nil:
			c.rerr = err
		case f.Kind == pluginv1.FrameKind_FRAME_KIND_GOAWAY:
			c.rerr = io.EOF
		case f.Kind == pluginv1.FrameKind_FRAME_KIND_DATA:
			c.rbuf = f.Payload
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// Write sends p to the driver as one frame.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.s.Send(&pluginv1.Frame{Payload: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite tells the driver no more data follows.
func (c *Conn) CloseWrite() error {
	if err := c.s.Send(&pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY}); err != nil {
		return err
	}
	return c.s.CloseSend()
}
