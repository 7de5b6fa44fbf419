package host

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/jumpwire-dev/jumpwire/internal/grpcerr"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
)

// LaunchOptions configures one plugin process.
type LaunchOptions struct {
	// Binary is the plugin executable.
	Binary string
	// Args are its arguments (for a Python driver: -m jumpwire_pyhost serve TYPE).
	Args []string
	// Logger receives the plugin's logs (its hclog JSON on stderr, re-logged).
	Logger hclog.Logger
	// StartTimeout bounds launch and handshake. Default 10s, and 30s for a
	// Python instance: its zygote may still be importing.
	StartTimeout time.Duration
	// Env is the plugin's whole environment: nothing of the exporter's is inherited.
	Env []string
	// Python, with Zygotes, says Binary is a Python interpreter and the
	// plugin an instance of this driver class, forked by the interpreter's
	// zygote instead of started from scratch.
	Python  string
	Zygotes *Zygotes
	// PythonCode is the hash of the class's installed package: a zygote
	// that imported another version of it forks no instance of this one.
	PythonCode string
	// Children, when set, serves the calls a driver makes to the children
	// its config gave it (Spec.Children), on a socket only its process may
	// connect to.
	Children ChildRouter
}

// Process is one running plugin process.
type Process struct {
	binary string
	client *plugin.Client
	runner *processRunner
	said   *stderrTail
	rpc    pluginv1.DriverClient
	info   *pluginv1.DescribeResponse
	calls  *callSocket // the plugin's call socket, when it offers one

	stopOnce sync.Once
}

// hostPlugin is the host side of the go-plugin binding.
type hostPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host: the host side serves no plugin")
}

func (hostPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return pluginv1.NewDriverClient(cc), nil
}

// Launch starts a plugin process, completes the handshake and asks the binary
// what it provides. The caller must Stop the process.
func Launch(ctx context.Context, o LaunchOptions) (*Process, error) {
	o.StartTimeout = startTimeout(o)
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	var pr *processRunner
	said := &stderrTail{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{protocol.Version: {protocol.PluginName: hostPlugin{}}},
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			env := append(append([]string(nil), o.Env...), spec.Env...)
			if o.Python != "" && o.Zygotes != nil {
				z, err := o.Zygotes.get(o.Binary, o.Python, o.PythonCode)
				if err != nil {
					return nil, err
				}
				pr = newZygoteRunner(z, o.Python, env)
				return pr, nil
			}
			var err error
			pr, err = newProcessRunner(o.Binary, o.Args, env)
			return pr, err
		},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SkipHostEnv:      true,
		StartTimeout:     o.StartTimeout,
		Stderr:           said,
		Logger:           o.Logger,
		// No AutoMTLS: the plugin is authenticated by its pid, and it checks
		// ours (see protocol.PeerCredentials). go-plugin puts the socket in a
		// directory of its own, mode 0700.
		GRPCDialOptions: append(protocol.DialOptions(protocol.Unix), grpc.WithTransportCredentials(
			protocol.PeerCredentials(protocol.ExpectPID("plugin this exporter started", func() int { return pr.pid }),
				func(err error) { o.Logger.Warn("refused a connection to the plugin", "binary", o.Binary, "error", err) }))),
	})
	p := &Process{binary: o.Binary, client: client, said: said}
	fail := func(err error) (*Process, error) {
		p.kill()
		return nil, err
	}
	rpcClient, err := client.Client()
	p.runner = pr
	if err != nil {
		p.kill() // first: once the process is reaped, its exit can be explained
		return nil, launchError(o, pr, said.lastWords(), err)
	}
	raw, err := rpcClient.Dispense(protocol.PluginName)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", o.Binary, err))
	}
	p.rpc = raw.(pluginv1.DriverClient)
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	info, err := p.rpc.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return fail(grpcerr.Wrap(err, "%s: describe", o.Binary))
	}
	p.info = info
	if path := info.GetCallSocket(); path != "" {
		// Without it the calls take gRPC, as with any plugin.
		if p.calls, err = dialCallSocket(path, pr.pid); err != nil {
			o.Logger.Warn("calls take gRPC", "binary", o.Binary, "error", err)
		}
	}
	return p, nil
}

// launchError turns go-plugin's launch failures into a sentence naming the
// binary. go-plugin's errors for them are plain strings, so the failure is
// classified from what jumpwire saw itself: the first line the plugin wrote
// to stdout (its handshake, or what stood in its place), whether the process
// had exited, and said, the gist of what it wrote to stderr (an SDK plugin
// explains there why it could not start). Only a failure after a valid
// handshake line (the connection) keeps go-plugin's error, wrapped.
func launchError(o LaunchOptions, pr *processRunner, said string, err error) error {
	if pr == nil || pr.pid == 0 {
		return err // the runner's own start error already names the binary
	}
	binary := o.Binary
	line, _ := pr.stdout.seen()
	core, app, isHandshake := handshakeFields(line)
	switch {
	case line == "" && pr.silentAtKill:
		// go-plugin gave up waiting for a live, silent process.
		return fmt.Errorf("%s did not complete its handshake within %v; is it a jumpwire plugin?", binary, o.StartTimeout)
	case line == "" && said != "":
		// It printed nothing to stdout and exited, saying why on stderr.
		return fmt.Errorf("%s %s before its handshake: %s", binary, pr.exitReason(), said)
	case line == "":
		return fmt.Errorf("%s did not answer as a jumpwire plugin: it %s without a handshake "+
			"(is it a driver built with the jumpwire sdk?)", binary, pr.exitReason())
	case !isHandshake:
		return fmt.Errorf("%s did not answer as a jumpwire plugin: it printed %q instead of the handshake "+
			"(is it a driver built with the jumpwire sdk? a plugin must print nothing to stdout itself)", binary, line)
	case core == strconv.Itoa(plugin.CoreProtocolVersion) && app != strconv.Itoa(protocol.Version):
		return fmt.Errorf("%s speaks plugin protocol version %s but this exporter speaks version %d: "+
			"build the driver with a jumpwire sdk that speaks version %d", binary, app, protocol.Version, protocol.Version)
	}
	return fmt.Errorf("%s: %w", binary, err)
}

// Info is what the binary said it provides.
func (p *Process) Info() *pluginv1.DescribeResponse { return p.info }

// Pid is the plugin process's id.
func (p *Process) Pid() int { return p.runner.pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.runner.exited }

// ExitReason says how the process ended: "exited with status 3", "was killed
// by SIGKILL", or "still running". A Go plugin that crashed is quoted: "exited
// with status 2: panic: assignment to entry in nil map".
func (p *Process) ExitReason() string {
	reason := p.runner.exitReason()
	select {
	case <-p.runner.exited:
	default:
		return reason
	}
	// The report of a crash may still be on its way through the pipe.
	select {
	case <-p.runner.stderrDone:
	case <-time.After(stderrGrace):
	}
	if words := p.said.crashWords(); words != "" {
		reason += ": " + words
	}
	return reason
}

// stderrGrace bounds the wait for a dead plugin's last stderr lines; it
// matters only when a child of the plugin still holds its stderr open.
const stderrGrace = 200 * time.Millisecond

// RPC is the plugin-protocol client of the process.
func (p *Process) RPC() pluginv1.DriverClient { return p.rpc }

// Stop closes the connection, gives the process a moment to exit, then kills
// its whole process group. It is idempotent.
func (p *Process) Stop() { p.stopOnce.Do(p.kill) }

func (p *Process) kill() {
	if p.calls != nil {
		p.calls.close()
	}
	p.client.Kill()
	if p.runner != nil {
		_ = p.runner.Kill(context.Background())
	}
}

// Describe launches binary only to ask what it provides, then stops it.
func Describe(ctx context.Context, binary string, logger hclog.Logger) (*pluginv1.DescribeResponse, error) {
	p, err := Launch(ctx, LaunchOptions{Binary: binary, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	return p.info, nil
}
