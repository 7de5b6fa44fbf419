// Package fakeexporter serves a scripted jumpstarter.v1 ExporterService and RouterService on a unix
// socket, so that the client library and the jw CLI are tested in-process, without an exporter or
// driver processes.
//
// A test describes the driver tree with [Driver] values, scripts each method with a function, and
// calls [Exporter.Start]; the server stops when the test ends. Byte streams are scripted with a
// Connect function working on a [StreamConn]; [Echo], [Emit] and [FailAfter] are ready-made ones.
package fakeexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// Driver is one driver instance of the fake tree.
type Driver struct {
	Name        string // key in the parent; ignored for the root
	Type        string // jumpwire.dev/type label
	Client      string // jumpstarter.dev/client label
	Description string
	State       string // jumpwire.dev/state label; "running" when empty
	// Plain leaves out the jumpwire.dev labels, as a plain Jumpstarter exporter would.
	Plain    bool
	Methods  []Method
	Children []*Driver
}

// Method is one method of a fake driver.
type Method struct {
	Name        string
	Description string // "" leaves the method out of methods_description
	Kind        string // "unary" (when empty), "streaming" or "stream"
	// Signature is the method's entry in the jumpwire.dev/signatures label (JSON, e.g.
	// `{"params":[{"name":"channel","type":"integer"}]}`); "" leaves the method out of it.
	Signature string
	// Call answers DriverCall; when nil, DriverCall answers null, or UNIMPLEMENTED if Stream is set.
	Call func(ctx context.Context, args []any) (any, error)
	// Stream answers StreamingDriverCall, sending each result; nil answers UNIMPLEMENTED.
	Stream func(ctx context.Context, args []any, send func(any) error) error
	// Connect answers RouterService.Stream (a byte stream, Kind "stream"); nil answers
	// UNIMPLEMENTED. See [Exporter.Stream] for how its result ends the stream.
	Connect func(ctx context.Context, conn *StreamConn) error
}

// CallRecord is a call the fake received.
type CallRecord struct {
	Path   string // dotted path of the driver ("" for the root)
	Method string
	Args   []any
}

// Exporter is the fake ExporterService. Set its fields before Start.
type Exporter struct {
	jumpstarterv1.UnimplementedExporterServiceServer
	jumpstarterv1.UnimplementedRouterServiceServer

	Name string // jumpstarter.dev/name of the exporter
	Motd string
	Root *Driver
	// Report, when set, is served by GetReport instead of the report built from Root (calls are
	// still routed by Root).
	Report *jumpstarterv1.GetReportResponse
	// Status answers GetStatus; LEASE_READY version 1 when nil. Change it with SetStatus once
	// the fake is serving.
	Status *jumpstarterv1.GetStatusResponse
	// EndSessionResult answers EndSession; success when nil. Change it with SetEndSessionResult
	// once the fake is serving.
	EndSessionResult *jumpstarterv1.EndSessionResponse

	mu      sync.Mutex
	drivers map[string]*node // by uuid
	calls   []CallRecord
	streams int // byte streams in progress
}

type node struct {
	path   string
	driver *Driver
}

// UUID returns the uuid the fake gives the driver at path ("" for the root).
func UUID(path string) string {
	if path == "" {
		return "uuid-root"
	}
	return "uuid-" + path
}

// BuildReport returns the GetReport response for the tree under Root, in pre-order.
func (e *Exporter) BuildReport() *jumpstarterv1.GetReportResponse {
	resp := &jumpstarterv1.GetReportResponse{
		Uuid:   "uuid-exporter",
		Labels: map[string]string{"jumpstarter.dev/name": e.Name},
		Motd:   e.Motd,
	}
	var add func(d *Driver, path string, parent *string)
	add = func(d *Driver, path string, parent *string) {
		r := &jumpstarterv1.DriverInstanceReport{
			Uuid:               UUID(path),
			ParentUuid:         parent,
			Labels:             map[string]string{},
			MethodsDescription: map[string]string{},
		}
		if d.Description != "" {
			r.Description = proto.String(d.Description)
		}
		if d.Client != "" {
			r.Labels["jumpstarter.dev/client"] = d.Client
		}
		if parent != nil {
			r.Labels["jumpstarter.dev/name"] = d.Name
		}
		kinds := map[string]string{}
		sigs := map[string]json.RawMessage{}
		for _, m := range d.Methods {
			if m.Signature != "" {
				sigs[m.Name] = json.RawMessage(m.Signature)
			}
			if m.Description != "" {
				r.MethodsDescription[m.Name] = m.Description
			}
			kinds[m.Name] = m.Kind
			if m.Kind == "" {
				kinds[m.Name] = "unary"
			}
		}
		if !d.Plain {
			k, _ := json.Marshal(kinds)
			r.Labels["jumpwire.dev/methods"] = string(k)
			r.Labels["jumpwire.dev/type"] = d.Type
			if len(sigs) > 0 {
				s, _ := json.Marshal(sigs)
				r.Labels["jumpwire.dev/signatures"] = string(s)
			}
			r.Labels["jumpwire.dev/state"] = d.State
			if d.State == "" {
				r.Labels["jumpwire.dev/state"] = "running"
			}
		}
		resp.Reports = append(resp.Reports, r)
		for _, c := range d.Children {
			add(c, join(path, c.Name), proto.String(UUID(path)))
		}
	}
	if e.Root != nil {
		add(e.Root, "", nil)
	}
	return resp
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// Start serves the fake on a new unix socket until the test ends and returns the socket's path.
func (e *Exporter) Start(t testing.TB) string {
	t.Helper()
	sock := SocketPath(t)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("fakeexporter: listen: %v", err)
	}
	t.Cleanup(e.Serve(lis))
	return sock
}

// Serve serves the fake on lis in the background and returns the function that stops it (closing
// the listener, ending the calls in flight, and waiting for the server to finish). Stop may be
// called more than once.
func (e *Exporter) Serve(lis net.Listener) (stop func()) {
	e.mu.Lock()
	e.drivers = map[string]*node{}
	var index func(d *Driver, path string)
	index = func(d *Driver, path string) {
		e.drivers[UUID(path)] = &node{path: path, driver: d}
		for _, c := range d.Children {
			index(c, join(path, c.Name))
		}
	}
	if e.Root != nil {
		index(e.Root, "")
	}
	e.mu.Unlock()

	srv := grpc.NewServer()
	jumpstarterv1.RegisterExporterServiceServer(srv, e)
	jumpstarterv1.RegisterRouterServiceServer(srv, e)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			srv.Stop()
			<-done
		})
	}
}

// SocketPath returns a path for a unix socket in a directory removed when the test ends; it is
// short enough for the operating system's limit.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "fx"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	return filepath.Join(dir, "exporter.sock")
}

// Calls returns the calls received so far, in order; a byte stream counts as a call without
// arguments.
func (e *Exporter) Calls() []CallRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]CallRecord(nil), e.calls...)
}

// GetReport implements jumpstarterv1.ExporterServiceServer.
func (e *Exporter) GetReport(context.Context, *emptypb.Empty) (*jumpstarterv1.GetReportResponse, error) {
	if e.Report != nil {
		return e.Report, nil
	}
	return e.BuildReport(), nil
}

// find records a call and returns its method.
func (e *Exporter) find(uuid, method string, args []*structpb.Value) (*Method, []any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.drivers[uuid]
	if n == nil {
		return nil, nil, status.Errorf(codes.NotFound, "no driver with uuid %s", uuid)
	}
	goArgs := make([]any, len(args))
	for i, a := range args {
		goArgs[i] = a.AsInterface()
	}
	e.calls = append(e.calls, CallRecord{Path: n.path, Method: method, Args: goArgs})
	for i := range n.driver.Methods {
		if m := &n.driver.Methods[i]; m.Name == method {
			return m, goArgs, nil
		}
	}
	return nil, nil, status.Errorf(codes.NotFound, "driver %q has no method %q", n.driver.Name, method)
}

// DriverCall implements jumpstarterv1.ExporterServiceServer.
func (e *Exporter) DriverCall(ctx context.Context, req *jumpstarterv1.DriverCallRequest) (*jumpstarterv1.DriverCallResponse, error) {
	m, args, err := e.find(req.GetUuid(), req.GetMethod(), req.GetArgs())
	if err != nil {
		return nil, err
	}
	if m.Call == nil && m.Stream != nil {
		return nil, status.Errorf(codes.Unimplemented, "method %q streams its results", m.Name)
	}
	var result any
	if m.Call != nil {
		if result, err = m.Call(ctx, args); err != nil {
			return nil, err
		}
	}
	v, err := structpb.NewValue(result)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "fake result: %v", err)
	}
	return &jumpstarterv1.DriverCallResponse{Uuid: req.GetUuid(), Result: v}, nil
}

// StreamingDriverCall implements jumpstarterv1.ExporterServiceServer.
func (e *Exporter) StreamingDriverCall(req *jumpstarterv1.StreamingDriverCallRequest, stream grpc.ServerStreamingServer[jumpstarterv1.StreamingDriverCallResponse]) error {
	m, args, err := e.find(req.GetUuid(), req.GetMethod(), req.GetArgs())
	if err != nil {
		return err
	}
	if m.Stream == nil {
		return status.Errorf(codes.Unimplemented, "method %q does not stream", m.Name)
	}
	return m.Stream(stream.Context(), args, func(result any) error {
		v, err := structpb.NewValue(result)
		if err != nil {
			return fmt.Errorf("fake result: %w", err)
		}
		return stream.Send(&jumpstarterv1.StreamingDriverCallResponse{Uuid: req.GetUuid(), Result: v})
	})
}

// SetStatus changes the answer to GetStatus.
func (e *Exporter) SetStatus(s *jumpstarterv1.GetStatusResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Status = s
}

// SetEndSessionResult changes the answer to EndSession.
func (e *Exporter) SetEndSessionResult(r *jumpstarterv1.EndSessionResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.EndSessionResult = r
}

// GetStatus implements jumpstarterv1.ExporterServiceServer.
func (e *Exporter) GetStatus(context.Context, *jumpstarterv1.GetStatusRequest) (*jumpstarterv1.GetStatusResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Status != nil {
		return e.Status, nil
	}
	return &jumpstarterv1.GetStatusResponse{Status: jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY, StatusVersion: 1}, nil
}

// EndSession implements jumpstarterv1.ExporterServiceServer.
func (e *Exporter) EndSession(context.Context, *jumpstarterv1.EndSessionRequest) (*jumpstarterv1.EndSessionResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.EndSessionResult != nil {
		return e.EndSessionResult, nil
	}
	return &jumpstarterv1.EndSessionResponse{Success: true, Message: proto.String("session ended")}, nil
}

// Lab returns the tree most tests use: a root composite with a power switch ("power": on, off and a
// streaming read that sends two readings), a serial port ("serial": connect, a byte stream that
// echoes what it receives; set_dtr)
// and a group "dut" holding another power switch.
func Lab() *Exporter {
	return &Exporter{
		Name: "lab-1",
		Motd: "be nice",
		Root: &Driver{
			Type: "composite", Client: "jumpstarter_driver_composite.client.CompositeClient",
			Description: "Demo exporter",
			Children: []*Driver{
				PowerDriver("power", "Bench supply"),
				{
					Name: "serial", Type: "serial", Client: "jumpstarter_driver_pyserial.client.PySerialClient",
					Description: "USB serial console",
					Methods: []Method{
						{Name: "connect", Kind: "stream", Description: "Raw byte stream", Connect: Echo},
						{Name: "set_dtr", Description: "Set DTR", Call: func(_ context.Context, args []any) (any, error) {
							if len(args) != 1 {
								return nil, status.Errorf(codes.InvalidArgument, "set_dtr takes 1 argument, got %d", len(args))
							}
							return nil, nil
						}},
					},
				},
				{
					Name: "dut", Type: "composite", Client: "jumpstarter_driver_composite.client.CompositeClient",
					Children: []*Driver{PowerDriver("power", "DUT power")},
				},
			},
		},
	}
}

// PowerDriver returns a fake power driver: on and off return null, read streams
// {voltage: 5, current: 2} and {voltage: 5, current: 2.5}.
func PowerDriver(name, description string) *Driver {
	return &Driver{
		Name: name, Type: "power", Client: "jumpstarter_driver_power.client.PowerClient",
		Description: description,
		Methods: []Method{
			{Name: "on", Description: "Power on the device"},
			{Name: "off", Description: "Power off the device"},
			{Name: "read", Kind: "streaming", Description: "Stream power readings",
				Stream: func(_ context.Context, _ []any, send func(any) error) error {
					for _, c := range []float64{2, 2.5} {
						if err := send(map[string]any{"voltage": 5.0, "current": c}); err != nil {
							return err
						}
					}
					return nil
				}},
		},
	}
}
