package sdk

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
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
		fmt.Printf("%s %s (jumpwire sdk %s, plugin protocol %d.%d)\n", name, p.Version, Version, protocol.Version, protocol.Minor)
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
	// When the exporter dies, writes to stderr (a pipe it read) fail: they
	// must not kill the plugin with SIGPIPE before watchParent kills the
	// plugin's group, or whatever the plugin started would live on.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	go watchParent(os.Getppid(), logger)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  protocol.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{protocol.Version: {protocol.PluginName: &grpcPlugin{srv: srv}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(serverOptions(opts, logger)...)
		},
		Logger: logger,
	})
}

// serverOptions are the plugin's gRPC server options. The exporter is
// authenticated by its pid: only the process that started this plugin may
// connect. An exporter from before peer credentials asks for go-plugin's
// AutoMTLS instead (PLUGIN_CLIENT_CERT), which go-plugin has put in opts.
func serverOptions(opts []grpc.ServerOption, logger hclog.Logger) []grpc.ServerOption {
	opts = append(append(opts, protocol.MarkErrors()...), grpc.NumStreamWorkers(streamWorkers))
	if os.Getenv("PLUGIN_CLIENT_CERT") != "" {
		return append(opts, protocol.ServerOptions(protocol.Unix|protocol.TLS)...)
	}
	parent := os.Getppid()
	creds := protocol.PeerCredentials(protocol.ExpectPID("exporter that started this plugin", func() int { return parent }),
		func(err error) { logger.Warn("refused a connection", "error", err) })
	return append(append(opts, protocol.ServerOptions(protocol.Unix)...), grpc.Creds(creds))
}

// streamWorkers is how many goroutines serve the plugin's calls and streams
// (more start one goroutine each). A worker keeps the stack it grew: a call
// on a fresh goroutine spends an eighth of the plugin's CPU copying its
// stack as it grows.
const streamWorkers = 16

// watchParent ends the plugin when the exporter that started it is gone,
// however it went: the kernel's parent-death signal (SIGTERM, asked for by
// the exporter), or a new parent seen by polling when that signal is not
// delivered. Whatever the plugin started goes with it.
func watchParent(ppid int, logger hclog.Logger) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	tick := time.NewTicker(250 * time.Millisecond)
	for {
		select {
		case <-term:
		case <-tick.C:
			if os.Getppid() == ppid {
				continue
			}
		}
		logger.Error("the exporter that started this plugin is gone; exiting with everything it started", "parent", ppid)
		killGroup()
	}
}

// killGroup kills the plugin's process group, the plugin included. The
// exporter starts every plugin as the leader of its own group; a plugin run
// some other way only kills itself.
func killGroup() {
	if syscall.Getpgrp() == os.Getpid() {
		_ = syscall.Kill(0, syscall.SIGKILL)
	}
	os.Exit(3)
}

// grpcPlugin is the plugin side of the go-plugin binding.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (g *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	protocol.RegisterService(s, &pluginv1.Driver_ServiceDesc, g.srv)
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("sdk: the plugin side has no client")
}
