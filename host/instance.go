// Package host runs driver plugins: one supervised plugin process per driver
// instance. It launches a binary with go-plugin (gRPC over a unix socket with
// AutoMTLS, no inherited environment, its own process group, killed with the
// exporter), checks the protocol version, configures the instance, forwards
// calls and streams to it with the caller's context joined to the process's
// lifetime, and stops it leaving nothing behind.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/internal/grpcerr"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Spec says what one driver instance runs.
type Spec struct {
	// Binary is the plugin executable providing Type.
	Binary string
	// Args are the executable's arguments; Env is added to its environment.
	// A Python driver runs as the interpreter with arguments naming the
	// plugin host and the class, and needs PATH and HOME.
	Args, Env []string
	// Python is the driver class when Binary is a Python interpreter: with
	// LaunchOptions.Zygotes the instance is forked by the interpreter's zygote.
	Python string
	// PythonCode is the hash of the installed package providing Python.
	PythonCode string
	// Type is the driver type (name or alias) to configure.
	Type string
	// Name is the instance's key in its parent; Path its dotted path from the root.
	Name, Path string
	// Config is the instance's config, checked by the driver.
	Config *structpb.Struct
	// Children are the instances the config places under this one. A
	// plugin of protocol minor 4 or later is told of them and may call them
	// through LaunchOptions.Children.
	Children []*pluginv1.Child
}

// ConfigError says the driver rejected its config. Problems name keys inside
// the config, so the caller can point at the lines of the config file.
type ConfigError struct {
	Path     string
	Problems []*pluginv1.ConfigProblem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		b.WriteString(p.Message)
	}
	return fmt.Sprintf("%s: config rejected: %s", e.Path, b.String())
}

// Instance is a configured driver instance and the plugin process serving it.
type Instance struct {
	spec   Spec
	proc   *Process
	conf   *pluginv1.ConfigureResponse
	life   context.Context // cancelled, with the exit as cause, when the process exits
	logger hclog.Logger

	retired atomic.Pointer[string] // why the instance is being stopped on purpose
	cut     context.Context        // cancelled, with the retirement as cause, when what is left is cut off
	cutOff  context.CancelCauseFunc

	busyMu sync.Mutex
	busy   int           // calls and streams in flight
	idle   chan struct{} // closed when busy drops to 0; nil while idle
}

// Start launches a process for spec and configures the instance in it.
// A config the driver rejects is a *ConfigError.
func Start(ctx context.Context, spec Spec, o LaunchOptions) (*Instance, error) {
	o.Binary, o.Args, o.Python, o.PythonCode = spec.Binary, spec.Args, spec.Python, spec.PythonCode
	o.Env = append(append([]string(nil), o.Env...), spec.Env...)
	proc, err := Launch(ctx, o)
	if err != nil {
		return nil, err
	}
	req := &pluginv1.ConfigureRequest{
		Type: spec.Type, Config: spec.Config, Name: spec.Name, Path: spec.Path,
	}
	var children *childrenServer
	if len(spec.Children) > 0 && proc.info.GetProtocolMinor() >= childrenMinor {
		req.Children = spec.Children
		if o.Children != nil {
			children, req.ChildrenSocket, err = serveChildren(spec, proc.Pid, o.Children, o.Logger)
			if err != nil {
				proc.Stop()
				return nil, err
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout(o))
	defer cancel()
	conf, err := proc.rpc.Configure(cctx, req)
	if err != nil {
		children.stop()
		proc.Stop()
		return nil, grpcerr.Wrap(err, "configure %s", spec.Path)
	}
	if len(conf.Problems) > 0 {
		children.stop()
		proc.Stop()
		return nil, &ConfigError{Path: spec.Path, Problems: conf.Problems}
	}
	life, exited := context.WithCancelCause(context.Background())
	i := &Instance{spec: spec, proc: proc, conf: conf, life: life, logger: o.Logger}
	i.cut, i.cutOff = context.WithCancelCause(context.Background())
	go func() {
		<-proc.Exited()
		children.stop() // the calls it was making to its children end with it
		exited(status.Error(codes.Unavailable, i.exitMessage()))
	}()
	return i, nil
}

func startTimeout(o LaunchOptions) time.Duration {
	switch {
	case o.StartTimeout > 0:
		return o.StartTimeout
	case o.Python != "":
		return 30 * time.Second
	}
	return 10 * time.Second
}

func (i *Instance) exitMessage() string {
	if r := i.retired.Load(); r != nil {
		return *r
	}
	return fmt.Sprintf("driver %s (%s) %s", i.spec.Path, i.spec.Type, i.proc.ExitReason())
}

// Retire marks the instance as being replaced: calls and streams still on
// it when it stops end with reason instead of an exit status.
func (i *Instance) Retire(reason string) { i.retired.Store(&reason) }

// Drain waits until no call or stream is in flight, or ctx ends.
func (i *Instance) Drain(ctx context.Context) error {
	i.busyMu.Lock()
	idle := i.idle
	i.busyMu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (i *Instance) enter() {
	i.busyMu.Lock()
	if i.busy == 0 {
		i.idle = make(chan struct{})
	}
	i.busy++
	i.busyMu.Unlock()
}

func (i *Instance) leave() {
	i.busyMu.Lock()
	i.busy--
	if i.busy == 0 {
		close(i.idle)
		i.idle = nil
	}
	i.busyMu.Unlock()
}

// Spec is what the instance runs.
func (i *Instance) Spec() Spec { return i.spec }

// Configured is what the driver answered to its config: its methods,
// description and labels.
func (i *Instance) Configured() *pluginv1.ConfigureResponse { return i.conf }

// Info is what the binary said it provides.
func (i *Instance) Info() *pluginv1.DescribeResponse { return i.proc.info }

// Pid is the id of the plugin process.
func (i *Instance) Pid() int { return i.proc.Pid() }

// Done is closed when the plugin process has exited.
func (i *Instance) Done() <-chan struct{} { return i.life.Done() }

// join derives a call context from ctx that is also cancelled when the
// process exits.
func (i *Instance) join(ctx context.Context) (context.Context, context.CancelFunc) {
	i.enter()
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(i.life, func() { cancel(context.Cause(i.life)) })
	stopCut := context.AfterFunc(i.cut, func() { cancel(context.Cause(i.cut)) })
	var once sync.Once
	return c, func() { once.Do(func() { stop(); stopCut(); cancel(nil); i.leave() }) }
}

// callError explains a failed call made with ctx, whose trailing metadata
// is trailer. An error the plugin answered with (it carries
// protocol.DriverErrorTrailer) is the driver's own: it goes to the client
// as it is, code and sentence, whatever the code. When the process died
// under the call, the client gets UNAVAILABLE naming the driver and how it
// exited. When the caller's deadline passed, gRPC says so in one of two
// ways ("context deadline exceeded", or a stream reset if the plugin
// noticed first); the client always reads the first.
func (i *Instance) callError(ctx context.Context, err error, trailer metadata.MD) error {
	if i.cut.Err() != nil {
		return context.Cause(i.cut) // retired: what was left was cut off on purpose
	}
	if protocol.DriverError(trailer) {
		return err
	}
	code := status.Code(err)
	if code == codes.DeadlineExceeded && deadlinePassed(ctx) {
		return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	if ctx.Err() != nil && i.life.Err() == nil {
		return err // the caller (or its session) gave up; the process is fine
	}
	if code == codes.Unavailable || code == codes.Canceled {
		// The connection breaks a moment before the exit is noticed. A
		// plugin older than minor version 2 does not mark its own errors,
		// so its UNAVAILABLE waits here too, for an exit that may not come.
		select {
		case <-i.life.Done():
		case <-time.After(exitGrace):
		}
	}
	if i.life.Err() != nil {
		return context.Cause(i.life)
	}
	return err
}

// uploadError is callError, except that a call cut off because an upload
// could not reach the driver fails with that reason.
func (i *Instance) uploadError(ctx context.Context, err error, trailer metadata.MD) error {
	var open *openError
	if errors.As(context.Cause(ctx), &open) {
		return i.callError(ctx, open.err, nil)
	}
	return i.callError(ctx, err, trailer)
}

// exitGrace bounds the wait for a process's exit to be noticed after its
// connection broke.
var exitGrace = time.Second

// deadlinePassed reports whether ctx's deadline has passed (ctx.Err may
// say so a moment later, when its timer runs).
func deadlinePassed(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// Call calls a unary method. The uploads its arguments name are relayed to
// the driver while it runs.
func (i *Instance) Call(ctx context.Context, method string, args []*structpb.Value, uploads ...Upload) (*structpb.Value, error) {
	if err := i.alive(); err != nil {
		return nil, err
	}
	return i.call(ctx, method, args, uploads)
}

// call is Call on an instance just found alive (Supervised checks it when
// it picks the instance: the check reads /proc, and a call needs one).
func (i *Instance) call(ctx context.Context, method string, args []*structpb.Value, uploads []Upload) (*structpb.Value, error) {
	ctx, done := i.join(ctx)
	defer done()
	if calls := i.proc.calls; calls != nil && len(uploads) == 0 && calls.usable() {
		resp, driverErr, err := calls.call(ctx, outgoing(ctx, protocol.InstanceHeader), &pluginv1.CallRequest{Method: method, Args: args})
		if err != nil {
			if driverErr && i.cut.Err() == nil {
				return nil, err
			}
			return nil, i.callError(ctx, err, nil)
		}
		return resp.Result, nil
	}
	ctx, stop := i.feed(ctx, uploads)
	var trailer metadata.MD
	resp, err := i.proc.rpc.Call(ctx, &pluginv1.CallRequest{Method: method, Args: args}, grpc.Trailer(&trailer))
	if err != nil {
		err = i.uploadError(ctx, err, trailer) // before stop cancels ctx
	}
	stop(err == nil)
	if err != nil {
		return nil, err
	}
	return resp.Result, nil
}

// outgoing is the last value of the outgoing metadata key in ctx.
func outgoing(ctx context.Context, key string) string {
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get(key); len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// StreamingCall calls a method whose results arrive one by one. Stopping the
// iteration cancels the call. The uploads its arguments name are relayed to
// the driver while it runs.
func (i *Instance) StreamingCall(ctx context.Context, method string, args []*structpb.Value, uploads ...Upload) iter.Seq2[*structpb.Value, error] {
	return func(yield func(*structpb.Value, error) bool) {
		if err := i.alive(); err != nil {
			yield(nil, err)
			return
		}
		i.streamingCall(ctx, method, args, uploads, yield)
	}
}

// streamingCall is StreamingCall on an instance just found alive.
func (i *Instance) streamingCall(ctx context.Context, method string, args []*structpb.Value, uploads []Upload, yield func(*structpb.Value, error) bool) {
	ctx, done := i.join(ctx)
	defer done()
	ctx, stop := i.feed(ctx, uploads)
	completed := false
	defer func() { stop(completed) }()
	stream, err := i.proc.rpc.StreamingCall(ctx, &pluginv1.CallRequest{Method: method, Args: args})
	if err != nil {
		yield(nil, i.uploadError(ctx, err, nil))
		return
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			completed = true
			return
		}
		if err != nil {
			yield(nil, i.uploadError(ctx, err, stream.Trailer()))
			return
		}
		if !yield(resp.Result, nil) {
			return
		}
	}
}

// Stream opens a byte stream to method. The stream ends when ctx is cancelled
// or the process exits; the returned cancel releases it.
func (i *Instance) Stream(ctx context.Context, method string) (pluginv1.Driver_StreamClient, context.CancelFunc, error) {
	if err := i.alive(); err != nil {
		return nil, nil, err
	}
	ctx, done := i.join(ctx)
	ctx = metadata.AppendToOutgoingContext(ctx, protocol.MethodHeader, method)
	if f, ok := ctx.Value(localFileKey{}).(*os.File); ok && i.proc.info.GetProtocolMinor() >= localFileMinor {
		// The plugin runs as this process's user: it can open the file
		// through this process's descriptor while the caller holds it open.
		ctx = metadata.AppendToOutgoingContext(ctx, protocol.LocalFileHeader,
			fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()))
	}
	s, err := i.proc.rpc.Stream(ctx)
	if err != nil {
		done()
		return nil, nil, i.callError(ctx, err, nil)
	}
	return s, done, nil
}

// StreamError explains how st, a stream to this instance opened with ctx,
// ended with err (from its Header, Recv or RecvMsg). A stream whose caller
// went away is explained at once; a driver's own error is passed on as it
// is; only a stream that broke under a live caller waits (a moment) to
// learn whether the process died.
func (i *Instance) StreamError(ctx context.Context, st pluginv1.Driver_StreamClient, err error) error {
	return i.callError(ctx, err, st.Trailer())
}

// Reset asks the driver to return to its initial state.
func (i *Instance) Reset(ctx context.Context) error {
	if err := i.alive(); err != nil {
		return err
	}
	ctx, done := i.join(ctx)
	defer done()
	var trailer metadata.MD
	if _, err := i.proc.rpc.Reset(ctx, &pluginv1.ResetRequest{}, grpc.Trailer(&trailer)); err != nil {
		return i.callError(ctx, err, trailer)
	}
	return nil
}

// Stop calls the driver's Close (bounded by ctx) and stops its process and
// everything the process started. It is idempotent. A retired instance's
// calls and streams still in flight end first, with the retirement reason.
func (i *Instance) Stop(ctx context.Context) error { return i.stop(ctx, false) }

// HandOver stops the instance as Stop does, for a successor that takes its
// device over: the driver is asked to hand the device over (leave it
// running) rather than to close it (see sdk.HandOverer).
func (i *Instance) HandOver(ctx context.Context) error { return i.stop(ctx, true) }

func (i *Instance) stop(ctx context.Context, handover bool) error {
	if r := i.retired.Load(); r != nil {
		i.cutOff(status.Error(codes.Unavailable, *r))
	}
	var err error
	if i.alive() == nil {
		// Not join: a retired instance's cut must end what is left of its
		// calls, not its Close.
		cctx, cancel := context.WithCancelCause(ctx)
		stop := context.AfterFunc(i.life, func() { cancel(context.Cause(i.life)) })
		_, err = i.proc.rpc.Close(cctx, &pluginv1.CloseRequest{Handover: handover})
		stop()
		cancel(nil)
		if err != nil {
			err = grpcerr.Wrap(err, "host: close %s", i.spec.Path)
		}
	}
	i.proc.Stop()
	<-i.life.Done() // Stop reaps the process: after it, the instance is known dead
	return err
}

// alive fails fast when the process has already exited, or is about to
// (it was killed, and its exit is recorded in a moment).
func (i *Instance) alive() error {
	if i.life.Err() == nil && i.proc.runner.dying() {
		select {
		case <-i.life.Done():
		case <-time.After(time.Second):
		}
	}
	if i.life.Err() != nil {
		return context.Cause(i.life)
	}
	return nil
}

// localFileMinor is the plugin protocol's minor version from which a
// plugin may take a byte stream's client data as a local file.
const localFileMinor = 5

type localFileKey struct{}

// WithLocalFile returns ctx for a byte stream (Instance.Stream) whose
// client data is f, a regular file the caller holds open until the stream
// ends: a plugin of minor 5 or later is offered it, and says in its
// headers (protocol.LocalFileTakenHeader) whether it took it; if it did
// not, the caller sends f's bytes as frames.
func WithLocalFile(ctx context.Context, f *os.File) context.Context {
	return context.WithValue(ctx, localFileKey{}, f)
}
