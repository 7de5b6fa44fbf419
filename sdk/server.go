package sdk

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/internal/harness"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// Plugin is what a plugin binary serves: its driver types and its version.
type Plugin struct {
	// Version is the binary's own version, shown to operators ("1.4.2").
	Version string
	// Drivers are the driver types the binary provides.
	Drivers []Type
}

// server implements the plugin protocol for one process: it describes the
// binary's types and, once configured, serves one driver instance.
type server struct {
	pluginv1.UnimplementedDriverServer

	plugin Plugin
	logger hclog.Logger

	mu       sync.RWMutex
	driver   Driver
	methods  map[string]*Method
	typ      *Type
	closed   bool
	busy     sync.WaitGroup // calls and streams in the driver; Close waits for them
	describe *pluginv1.DescribeResponse

	uploads uploads // upload streams waiting for, or read by, the calls that name them
}

func init() {
	harness.NewServer = func(p any, logger hclog.Logger) (pluginv1.DriverServer, error) {
		return newServer(p.(Plugin), logger)
	}
}

func newServer(p Plugin, logger hclog.Logger) (*server, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	names := map[string]string{}
	desc := &pluginv1.DescribeResponse{SdkVersion: Version, ProtocolMinor: protocol.Minor, Version: p.Version}
	for i := range p.Drivers {
		t := &p.Drivers[i]
		if err := t.check(); err != nil {
			return nil, err
		}
		for _, n := range append([]string{t.Name}, t.Aliases...) {
			if other, dup := names[n]; dup {
				return nil, fmt.Errorf("sdk: type name %q is used by both %q and %q", n, other, t.Name)
			}
			names[n] = t.Name
		}
		desc.Types = append(desc.Types, t.describe())
	}
	return &server{plugin: p, logger: logger, describe: desc}, nil
}

func (s *server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return s.describe, nil
}

func (s *server) lookupType(name string) *Type {
	for i := range s.plugin.Drivers {
		t := &s.plugin.Drivers[i]
		if t.Name == name {
			return t
		}
		for _, a := range t.Aliases {
			if a == name {
				return t
			}
		}
	}
	return nil
}

func (s *server) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (resp *pluginv1.ConfigureResponse, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.driver != nil {
		return nil, statusf(codes.FailedPrecondition, "this plugin process already serves an instance of %s; start another process for another instance", s.typ.Name)
	}
	t := s.lookupType(req.Type)
	if t == nil {
		return nil, statusf(codes.NotFound, "this binary provides no driver type %q", req.Type)
	}
	defer func() {
		if r := recover(); r != nil {
			resp, err = &pluginv1.ConfigureResponse{Problems: []*pluginv1.ConfigProblem{{
				Message: fmt.Sprintf("the driver panicked while starting: %v", r),
			}}}, nil
		}
	}()
	d, problems := t.New.construct(req.Config)
	if len(problems) > 0 {
		return &pluginv1.ConfigureResponse{Problems: problems}, nil
	}
	logger := s.logger.Named(req.Path)
	if b, ok := d.(based); ok {
		*b.sdkBase() = Base{name: req.Name, path: req.Path, logger: logger}
	}
	resp = &pluginv1.ConfigureResponse{Description: t.Description}
	if ds, ok := d.(Describer); ok {
		resp.Description = ds.Description()
	}
	if l, ok := d.(Labeler); ok {
		resp.Labels = l.Labels()
	}
	methods := map[string]*Method{}
	for _, m := range d.Exports() {
		if m.err != nil {
			return &pluginv1.ConfigureResponse{Problems: []*pluginv1.ConfigProblem{{Message: m.err.Error()}}}, nil
		}
		methods[m.name] = &m
		resp.Methods = append(resp.Methods, m.info())
	}
	s.driver, s.methods, s.typ = d, methods, t
	return resp, nil
}

// method finds a configured method of the wanted kind. When it returns no
// error, the caller must call s.busy.Done once the call has returned.
func (s *server) method(name string, kind pluginv1.MethodKind) (_ *Method, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.driver == nil {
		return nil, statusf(codes.FailedPrecondition, "the driver is not configured")
	}
	if s.closed {
		return nil, statusf(codes.Unavailable, "the driver is closed")
	}
	m, ok := s.methods[name]
	if !ok {
		return nil, statusf(codes.NotFound, "%s has no method %q", s.typ.Name, name)
	}
	defer func() {
		if err == nil {
			s.busy.Add(1) // under mu, before Close marks closed: Close's Wait sees it
		}
	}()
	if m.kind != kind {
		return nil, statusf(codes.InvalidArgument, "%s is a %s method; call it as one", name, kindName(m.kind))
	}
	return m, nil
}

func kindName(k pluginv1.MethodKind) string {
	switch k {
	case pluginv1.MethodKind_METHOD_KIND_STREAMING:
		return "streaming"
	case pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM:
		return "byte-stream"
	}
	return "unary"
}

func (s *server) Call(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.CallResponse, error) {
	m, err := s.method(req.Method, pluginv1.MethodKind_METHOD_KIND_UNARY)
	if err != nil {
		return nil, err
	}
	defer s.busy.Done()
	v, err := m.call(ctx, s.logger.Error, &s.uploads, req.Args)
	if err != nil {
		return nil, err
	}
	return &pluginv1.CallResponse{Result: v}, nil
}

func (s *server) StreamingCall(req *pluginv1.CallRequest, stream pluginv1.Driver_StreamingCallServer) error {
	m, err := s.method(req.Method, pluginv1.MethodKind_METHOD_KIND_STREAMING)
	if err != nil {
		return err
	}
	defer s.busy.Done()
	return m.seq(stream.Context(), s.logger.Error, &s.uploads, req.Args, func(v *structpb.Value) error {
		return stream.Send(&pluginv1.CallResponse{Result: v})
	})
}

func (s *server) Stream(stream pluginv1.Driver_StreamServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if uuid, ok := resourceHeader(md); ok {
		// An upload for a call that names it (see Resource).
		return s.uploads.serve(stream.Context(), stream, uuid, stream.SendHeader)
	}
	var name string
	if v := md.Get(protocol.MethodHeader); len(v) > 0 {
		name = v[0]
	}
	m, err := s.method(name, pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM)
	if err != nil {
		return err
	}
	defer s.busy.Done()
	local := s.openLocal(md)
	if local != nil {
		defer local.Close()
	}
	return serveStream(stream.Context(), m, s.logger.Error, stream, func() error {
		if local != nil {
			return stream.SendHeader(metadata.Pairs(protocol.LocalFileTakenHeader, "1"))
		}
		return stream.SendHeader(metadata.MD{})
	}, local)
}

// openLocal opens the local file the host names for a stream's client
// data (protocol.LocalFileHeader), or returns nil: no such header, or a
// file that cannot be opened or is not a regular file, whose bytes the
// host then sends as frames (it does so for any stream whose plugin does
// not say it took the file).
func (s *server) openLocal(md metadata.MD) *os.File {
	v := md.Get(protocol.LocalFileHeader)
	if len(v) != 1 {
		return nil
	}
	f, err := os.Open(v[0])
	if err != nil {
		s.logger.Warn("cannot open the stream's local file; taking its bytes as frames", "path", v[0], "error", err)
		return nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil
	}
	return f
}

func (s *server) Reset(ctx context.Context, _ *pluginv1.ResetRequest) (*pluginv1.ResetResponse, error) {
	s.mu.RLock()
	d := s.driver
	s.mu.RUnlock()
	if r, ok := d.(Resetter); ok {
		if err := guard(ctx, "Reset", s.logger.Error, r.Reset); err != nil {
			return nil, err
		}
	}
	return &pluginv1.ResetResponse{}, nil
}

func (s *server) Close(ctx context.Context, req *pluginv1.CloseRequest) (*pluginv1.CloseResponse, error) {
	s.mu.Lock()
	d, already := s.driver, s.closed
	s.closed = true
	s.mu.Unlock()
	// The exporter cancels what is in flight before it sends Close; wait
	// (within Close's deadline) until those calls have returned, so the
	// driver's Close never runs beside one of its methods.
	idle := make(chan struct{})
	go func() { s.busy.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
	}
	if already {
		return &pluginv1.CloseResponse{}, nil
	}
	if h, ok := d.(HandOverer); ok && req.GetHandover() {
		if err := guard(ctx, "HandOver", s.logger.Error, h.HandOver); err != nil {
			return nil, err
		}
		return &pluginv1.CloseResponse{}, nil
	}
	if c, ok := d.(Closer); ok {
		if err := guard(ctx, "Close", s.logger.Error, c.Close); err != nil {
			return nil, err
		}
	}
	return &pluginv1.CloseResponse{}, nil
}

// guard runs a lifecycle hook, turning a panic into an INTERNAL error.
func guard(ctx context.Context, name string, log logFunc, fn func(context.Context) error) (err error) {
	defer recoverCall(name, log, &err)
	return toStatus(fn(ctx))
}
