// Command plainproto is a driver written without the SDK: the generated
// plugin.v1 code on go-plugin's default gRPC server, with grpc-go's own
// protobuf codec, buffer pool and flow control. It stands in for a driver
// in another language, whose protobuf library encodes frames its own way,
// and checks that the exporter's frame relay speaks plain protobuf.
//
// It provides type "plain", whose byte stream "upper" sends back what it
// receives in upper case and ends when the client half-closes. Only the
// handshake constants come from the SDK.
package main

import (
	"bytes"
	"context"
	"errors"
	"io"

	plugin "github.com/hashicorp/go-plugin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var methods = []*pluginv1.Method{{
	Name:        "upper",
	Description: "Send back what is received, in upper case",
	Kind:        pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM,
}}

type driver struct {
	pluginv1.UnimplementedDriverServer
}

func (driver) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return &pluginv1.DescribeResponse{
		SdkVersion: "none",
		Version:    "1.0.0",
		Types:      []*pluginv1.DriverType{{Name: "plain", Description: "a driver without the SDK", Methods: methods}},
	}, nil
}

func (driver) Configure(_ context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	if req.Type != "plain" {
		return nil, status.Errorf(codes.NotFound, "no driver type %q", req.Type)
	}
	return &pluginv1.ConfigureResponse{Description: "a driver without the SDK", Methods: methods}, nil
}

func (driver) Reset(context.Context, *pluginv1.ResetRequest) (*pluginv1.ResetResponse, error) {
	return &pluginv1.ResetResponse{}, nil
}

func (driver) Close(context.Context, *pluginv1.CloseRequest) (*pluginv1.CloseResponse, error) {
	return &pluginv1.CloseResponse{}, nil
}

func (driver) Stream(s pluginv1.Driver_StreamServer) error {
	md, _ := metadata.FromIncomingContext(s.Context())
	if m := md.Get(protocol.MethodHeader); len(m) != 1 || m[0] != "upper" {
		return status.Errorf(codes.NotFound, "no byte stream %v", m)
	}
	if err := s.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	goaway := &pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY}
	for {
		f, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.Send(goaway)
		}
		if err != nil {
			return err
		}
		switch f.Kind {
		case pluginv1.FrameKind_FRAME_KIND_DATA:
			if err := s.Send(&pluginv1.Frame{Payload: bytes.ToUpper(f.Payload)}); err != nil {
				return err
			}
		case pluginv1.FrameKind_FRAME_KIND_GOAWAY:
			return s.Send(goaway)
		case pluginv1.FrameKind_FRAME_KIND_RST_STREAM:
			return nil
		}
	}
}

type driverPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (driverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterDriverServer(s, driver{})
	return nil
}

func (driverPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plainproto: the plugin side has no client")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  protocol.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{protocol.Version: {protocol.PluginName: driverPlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
