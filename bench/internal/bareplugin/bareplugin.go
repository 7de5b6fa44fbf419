// Package bareplugin is the baseline the benchmarks measure jumpwire against:
// a plugin served and launched with hashicorp/go-plugin directly (gRPC over a
// unix socket, no TLS, as jumpwire's plugin hop since it authenticates by
// peer credentials), with none of the jumpwire SDK or host. Its two
// working RPCs are Call, which answers every call with the same small value
// the power driver's "state" method returns, so the messages on the wire are
// the same size as jumpwire's; and Stream, a byte stream that sinks or echoes
// (see [MethodSink] and [MethodEcho]) straight on the gRPC stream, as the
// benchmarks' sink driver does through the SDK.
//
// The plugin binary is ./bench/internal/bareplugin/cmd/jumpwire-bench-bareplugin.
package bareplugin

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Handshake is the go-plugin handshake of the bare plugin. It differs from
// the jumpwire one, so neither side can be mistaken for the other.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "JUMPWIRE_BENCH_BAREPLUGIN",
	MagicCookieValue: "bare",
}

// name is the name under which the binary serves its one plugin.
const name = "bare"

// server answers Call; every other RPC of the plugin protocol is unimplemented.
type server struct {
	pluginv1.UnimplementedDriverServer
}

// Call answers false, like the power driver's "state" of a switch that is off.
func (server) Call(context.Context, *pluginv1.CallRequest) (*pluginv1.CallResponse, error) {
	return &pluginv1.CallResponse{Result: structpb.NewBoolValue(false)}, nil
}

// MethodHeader is the request metadata key naming the stream method, the
// same key (and so the same bytes on the wire) as jumpwire's plugin protocol.
const MethodHeader = "jumpwire-method"

// The stream methods of the bare plugin.
const (
	// MethodSink reads DATA frames until the host's GOAWAY or half-close, then
	// sends one frame holding the number of payload bytes it read (decimal
	// ASCII), a GOAWAY, and ends the stream.
	MethodSink = "sink"
	// MethodEcho sends each DATA frame's payload back as it arrives; after the
	// host's GOAWAY or half-close it sends a GOAWAY and ends the stream.
	MethodEcho = "echo"
)

// Stream serves MethodSink or MethodEcho, named by the MethodHeader metadata.
// It sends its headers first, as a jumpwire plugin does, so the host knows
// the stream is open before any data flows.
func (server) Stream(stream pluginv1.Driver_StreamServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	var method string
	if v := md.Get(MethodHeader); len(v) == 1 {
		method = v[0]
	}
	if method != MethodSink && method != MethodEcho {
		return status.Errorf(codes.NotFound, "bareplugin: no stream method %q (want %q or %q)", method, MethodSink, MethodEcho)
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	var n int64
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if f.Kind != pluginv1.FrameKind_FRAME_KIND_DATA {
			break // GOAWAY or RST_STREAM: the host sends no more
		}
		n += int64(len(f.Payload))
		if method == MethodEcho {
			if err := stream.Send(&pluginv1.Frame{Payload: f.Payload}); err != nil {
				return err
			}
		}
	}
	if method == MethodSink {
		if err := stream.Send(&pluginv1.Frame{Payload: strconv.AppendInt(nil, n, 10)}); err != nil {
			return err
		}
	}
	return stream.Send(&pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY})
}

// binding is both halves of the go-plugin binding.
type binding struct{ plugin.NetRPCUnsupportedPlugin }

func (binding) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterDriverServer(s, server{})
	return nil
}

func (binding) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return cc, nil
}

// Serve serves the bare plugin until the host stops it. It logs to stderr as
// hclog JSON at info level, as a jumpwire plugin does.
func Serve() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{name: binding{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	})
}

// Plugin is a running bare plugin process seen from the host.
type Plugin struct {
	client *plugin.Client
	// RPC is the plugin-protocol client of the process (only Call and Stream
	// work).
	RPC pluginv1.DriverClient
	// Conn is the connection RPC uses.
	Conn *grpc.ClientConn
}

// Launch starts binary with go-plugin (gRPC, no TLS) and completes the
// handshake. The caller must Kill the plugin.
func Launch(binary string) (*Plugin, error) {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{name: binding{}},
		Cmd:              exec.Command(binary),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, err
	}
	raw, err := rpc.Dispense(name)
	if err != nil {
		client.Kill()
		return nil, err
	}
	cc, ok := raw.(*grpc.ClientConn)
	if !ok {
		client.Kill()
		return nil, errors.New("bareplugin: dispensed an unexpected client")
	}
	return &Plugin{client: client, RPC: pluginv1.NewDriverClient(cc), Conn: cc}, nil
}

// Pid is the plugin process's id.
func (p *Plugin) Pid() int {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Kill stops the plugin process and waits for it to exit. It is idempotent.
func (p *Plugin) Kill() { p.client.Kill() }
