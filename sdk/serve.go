package sdk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
	"google.golang.org/grpc"
)

// Serve serves p as a plugin process and returns when the exporter stops it.
// It is the whole of a plugin binary's main function:
//
//	func main() { sdk.Serve(sdk.Plugin{Version: "1.0.0", Drivers: []sdk.Type{...}}) }
//
// Logs go to stderr as hclog JSON, which the exporter collects under the
// instance's name; nothing may be printed to stdout. Run by hand with
// --version, the binary prints its versions and exits. A plugin exits by
// itself when the exporter that started it goes away.
func Serve(p Plugin) {
	name := filepath.Base(os.Args[0])
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("%s %s (jumpwire sdk %s, plugin protocol %d.%d)\n", name, p.Version, Version, ProtocolVersion, ProtocolMinor)
		return
	}
	level := hclog.LevelFromString(os.Getenv("JUMPWIRE_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: level})
	srv, err := newServer(p, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	go watchParent(os.Getppid(), logger)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {PluginName: &grpcPlugin{srv: srv}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				grpc.MaxRecvMsgSize(MaxMessageSize),
				grpc.MaxSendMsgSize(MaxMessageSize),
			)...)
		},
		Logger: logger,
	})
}

// watchParent ends the process when the exporter that started it is gone,
// however it went (the exporter also asks the kernel for a parent-death
// signal; this covers the cases where that signal is not delivered).
func watchParent(ppid int, logger hclog.Logger) {
	for range time.Tick(250 * time.Millisecond) {
		if os.Getppid() != ppid {
			logger.Error("the exporter that started this plugin is gone; exiting", "parent", ppid)
			os.Exit(3)
		}
	}
}

// grpcPlugin is the plugin side of the go-plugin binding.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (g *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterDriverServer(s, g.srv)
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("sdk: the plugin side has no client")
}
