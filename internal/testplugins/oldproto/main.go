// Command oldproto is a test plugin that completes the go-plugin handshake
// with the jumpwire cookie but an unsupported protocol version (99), so the
// host refuses it.
package main

import (
	"context"
	"errors"

	plugin "github.com/hashicorp/go-plugin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
)

const version = 99

type driverPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (driverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterDriverServer(s, pluginv1.UnimplementedDriverServer{})
	return nil
}

func (driverPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("oldproto: the plugin side has no client")
}

func main() {
	hs := protocol.Handshake()
	hs.ProtocolVersion = version
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{version: {protocol.PluginName: driverPlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
