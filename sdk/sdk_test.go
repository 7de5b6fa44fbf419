package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/internal/harness"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// driverType is a driver type with no config whose every instance is d.
func driverType[D sdk.Driver](name string, d D) sdk.Type {
	return sdk.Type{Name: name, New: sdk.Factory(func(struct{}) (D, error) { return d, nil })}
}

// kindErrors are errors a driver may return, and what a client sees.
var kindErrors = []struct {
	name string
	err  error
	code codes.Code
}{
	{"not found", fmt.Errorf("no outlet 7: %w", sdk.ErrNotFound), codes.NotFound},
	{"unsupported", fmt.Errorf("no dimming on this model: %w", sdk.ErrUnsupported), codes.Unimplemented},
	{"invalid argument", fmt.Errorf("outlet must be 1-8: %w", sdk.ErrInvalidArgument), codes.InvalidArgument},
	{"unavailable", fmt.Errorf("pdu 10.0.0.7 does not answer: %w", sdk.ErrUnavailable), codes.Unavailable},
	{"io", fmt.Errorf("reading the relay: %w", sdk.ErrIO), codes.Internal},
	{"busy", fmt.Errorf("outlet 3 is held by another lease: %w", sdk.ErrBusy), codes.FailedPrecondition},
	{"deadline", fmt.Errorf("waiting for the relay: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
	{"canceled", fmt.Errorf("waiting for the relay: %w", context.Canceled), codes.Canceled},
	{"file missing", &fs.PathError{Op: "open", Path: "/dev/ttyUSB9", Err: fs.ErrNotExist}, codes.NotFound},
	{"permission", &fs.PathError{Op: "open", Path: "/dev/ttyUSB0", Err: fs.ErrPermission}, codes.PermissionDenied},
	{"value", &sdk.ValueError{Path: "outlet", Msg: "expected 1-8, got 9"}, codes.InvalidArgument},
	{"status", status.Error(codes.ResourceExhausted, "too many sessions"), codes.ResourceExhausted},
	{"plain", errors.New("the relay made a funny noise"), codes.Unknown},
}

// testDriver is a driver with one method per behaviour under test.
type testDriver struct {
	sdk.Base
	resets, closes atomic.Int32
	cancelled      chan struct{} // closed when wait observes its cancellation
}

// Interface guards
var (
	_ sdk.Driver   = (*testDriver)(nil)
	_ sdk.Resetter = (*testDriver)(nil)
	_ sdk.Closer   = (*testDriver)(nil)
)

func newTestDriver() *testDriver { return &testDriver{cancelled: make(chan struct{})} }

func (d *testDriver) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("ok", func(context.Context) (string, error) { return "ok", nil }, "Return ok"),
		sdk.Export("set", d.Set, "Set a value"),
		sdk.Export("call_method", d.CallMethod, "Call a method with arguments"),
		sdk.Export("fail", d.Fail, "Fail with the error kind named"),
		sdk.Export("panic", d.Panic, "Panic"),
		sdk.Export("count", d.Count, "Stream 1 to n"),
		sdk.Export("stream_panic", d.StreamPanic, "Yield once, then panic"),
		sdk.Export("wait", d.Wait, "Yield once, then wait to be cancelled"),
		sdk.ExportStream("echo", d.Echo, "Send back what is received"),
		sdk.ExportStream("echo_panic", d.EchoPanic, "Read once, then panic"),
	}
}

func (d *testDriver) Reset(context.Context) error { d.resets.Add(1); return nil }
func (d *testDriver) Close(context.Context) error { d.closes.Add(1); return nil }

func (d *testDriver) Set(_ context.Context, name string, n int, on bool) (string, error) {
	return fmt.Sprintf("%s=%d,%t", name, n, on), nil
}

// CallMethod is variadic: the exported method takes two or more arguments.
func (d *testDriver) CallMethod(_ context.Context, method string, env map[string]string, args ...string) (string, error) {
	return fmt.Sprintf("%s env=%d args=%q", method, len(env), args), nil
}

func (d *testDriver) Fail(_ context.Context, kind string) error {
	for _, k := range kindErrors {
		if k.name == kind {
			return k.err
		}
	}
	return fmt.Errorf("no error kind %q", kind)
}

func (d *testDriver) Panic(_ context.Context, msg string) error { panic(msg) }

func (d *testDriver) Count(ctx context.Context, n int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := 1; i <= n; i++ {
			if !yield(i, nil) {
				return
			}
		}
	}
}

func (d *testDriver) StreamPanic(context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		yield("first", nil)
		panic("stream boom")
	}
}

func (d *testDriver) Wait(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if !yield("started", nil) {
			return
		}
		<-ctx.Done()
		close(d.cancelled)
	}
}

func (d *testDriver) Echo(_ context.Context, conn sdk.Conn) error {
	_, err := io.Copy(conn, conn)
	return err
}

func (d *testDriver) EchoPanic(_ context.Context, conn sdk.Conn) error {
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	panic("echo boom after " + string(buf[:n]))
}

func startTest(t *testing.T) (*sdktest.Instance, *testDriver) {
	d := newTestDriver()
	return sdktest.Start(t, driverType("test", d), nil), d
}

func wantStatus(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	s := status.Convert(err)
	if s.Code() != code || s.Message() != msg {
		t.Errorf("%s: got %v %q, want %v %q", what, s.Code(), s.Message(), code, msg)
	}
}

func callOK(t *testing.T, i *sdktest.Instance) {
	t.Helper()
	if v, err := i.Call(t.Context(), "ok"); err != nil || v != "ok" {
		t.Fatalf("ok() = %v, %v; want ok", v, err)
	}
}

// Drivers whose Exports have a bad signature, one type each: the SDK checks
// an unconfigured instance when the plugin starts.
type (
	badExports              interface{ exports() []sdk.Method }
	badDriver[E badExports] struct{ sdk.Base }

	notFunc      struct{}
	noContext    struct{}
	bytesParam   struct{}
	badResult    struct{}
	noName       struct{}
	nilStream    struct{}
	exportsTwice struct{}
)

func (badDriver[E]) Exports() []sdk.Method { var e E; return e.exports() }

func ok(context.Context) error { return nil }

func (notFunc) exports() []sdk.Method { return []sdk.Method{sdk.Export("on", 42, "")} }
func (noContext) exports() []sdk.Method {
	return []sdk.Method{sdk.Export("set", func(int) error { return nil }, "")}
}
func (bytesParam) exports() []sdk.Method {
	return []sdk.Method{sdk.Export("upload", func(context.Context, string, []byte) error { return nil }, "")}
}
func (badResult) exports() []sdk.Method {
	return []sdk.Method{sdk.Export("get", func(context.Context) int { return 0 }, "")}
}
func (noName) exports() []sdk.Method { return []sdk.Method{sdk.Export("", ok, "")} }
func (nilStream) exports() []sdk.Method {
	return []sdk.Method{sdk.ExportStream("connect", nil, "")}
}
func (exportsTwice) exports() []sdk.Method {
	return []sdk.Method{sdk.Export("on", ok, ""), sdk.Export("off", ok, ""), sdk.Export("on", ok, "")}
}

func badType[E badExports]() sdk.Type {
	return sdk.Type{Name: "bad", New: sdk.Factory(func(struct{}) (*badDriver[E], error) { return &badDriver[E]{}, nil })}
}

func TestExportSignatureErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  sdk.Type
		want string
	}{
		{"not a function", badType[notFunc](),
			`driver type "bad": sdk: Export("on"): expected a function, got int`},
		{"no context", badType[noContext](),
			`driver type "bad": sdk: Export("set"): the first parameter of func(int) error must be context.Context`},
		{"bytes parameter", badType[bytesParam](),
			`driver type "bad": sdk: Export("upload"): parameter 2 is []byte, which clients cannot send; take a string, or use ExportStream for bytes`},
		{"bad result", badType[badResult](),
			`driver type "bad": sdk: Export("get"): func(context.Context) int must return error, (T, error) or iter.Seq2[T, error]`},
		{"no name", badType[noName](),
			`driver type "bad": sdk: Export: a method needs a name`},
		{"nil stream", badType[nilStream](),
			`driver type "bad": sdk: ExportStream("connect"): nil function`},
		{"exported twice", badType[exportsTwice](),
			`sdk: driver type "bad" exports "on" twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := harness.NewServer(sdk.Plugin{Drivers: []sdk.Type{tt.typ}}, nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("NewServer: got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestVariadic(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	ctx := t.Context()
	env := map[string]string{"LANG": "C"}
	tests := []struct {
		args []any
		want string
	}{
		{[]any{"ls", env}, `ls env=1 args=[]`},
		{[]any{"ls", env, "-l"}, `ls env=1 args=["-l"]`},
		{[]any{"ls", nil, "-l", "/tmp"}, `ls env=0 args=["-l" "/tmp"]`},
	}
	for _, tt := range tests {
		if v, err := i.Call(ctx, "call_method", tt.args...); err != nil || v != tt.want {
			t.Errorf("call_method%v = %v, %v; want %q", tt.args, v, err, tt.want)
		}
	}

	var m *pluginv1.Method
	for _, cm := range i.Configured.Methods {
		if cm.Name == "call_method" {
			m = cm
		}
	}
	if m == nil || !m.Variadic || !slices.Equal(m.Params, []string{"string", "object", "string"}) || m.Result != "string" {
		t.Errorf("call_method is described as %v; want variadic, params string, object, string...", m)
	}
}

func TestArgumentErrors(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	tests := []struct {
		method string
		args   []any
		msg    string
	}{
		{"set", nil, "set takes 3 arguments, got 0 (call it as set(string, integer, boolean))"},
		{"set", []any{"a", 1}, "set takes 3 arguments, got 2 (call it as set(string, integer, boolean))"},
		{"set", []any{"a", 1, true, 4}, "set takes 3 arguments, got 4 (call it as set(string, integer, boolean))"},
		{"set", []any{"a", "1", true}, `set: argument 2: expected integer, got string "1"`},
		{"set", []any{"a", 1.5, true}, `set: argument 2: expected integer, got 1.5`},
		{"set", []any{"a", 1, "yes"}, `set: argument 3: expected boolean, got string "yes"`},
		{"set", []any{nil, 1, true}, `set: argument 1: expected string, got null`},
		{"ok", []any{1}, "ok takes 0 arguments, got 1 (call it as ok())"},
		{"call_method", []any{"ls"}, "call_method takes at least 2 arguments, got 1 (call it as call_method(string, object, string...))"},
		{"call_method", []any{"ls", []any{}, "-l"}, `call_method: argument 2: expected object, got array []`},
		{"call_method", []any{"ls", nil, "-l", 4}, `call_method: argument 4: expected string, got 4`},
		{"call_method", []any{"ls", map[string]any{"LANG": 1}}, `call_method: argument 2.LANG: expected string, got 1`},
	}
	for _, tt := range tests {
		_, err := i.Call(t.Context(), tt.method, tt.args...)
		wantStatus(t, fmt.Sprintf("%s%v", tt.method, tt.args), err, codes.InvalidArgument, tt.msg)
	}
	callOK(t, i)
}

func TestCallingTheWrongWay(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	ctx := t.Context()
	_, err := i.Call(ctx, "reboot")
	wantStatus(t, "reboot()", err, codes.NotFound, `test has no method "reboot"`)
	_, err = i.Call(ctx, "count", 3)
	wantStatus(t, "count(3) as unary", err, codes.InvalidArgument, "count is a streaming method; call it as one")
	for _, err := range i.StreamingCall(ctx, "ok") {
		wantStatus(t, "ok() as streaming", err, codes.InvalidArgument, "ok is a unary method; call it as one")
	}
	_, err = i.Stream(ctx, "count")
	wantStatus(t, "count as a byte stream", err, codes.InvalidArgument, "count is a streaming method; call it as one")
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	for _, k := range kindErrors {
		_, err := i.Call(t.Context(), "fail", k.name)
		wantStatus(t, "fail("+k.name+")", err, k.code, status.Convert(k.err).Message())
		if got := sdk.Code(k.err); got != k.code {
			t.Errorf("sdk.Code(%v) = %v, want %v", k.err, got, k.code)
		}
	}
	if got := sdk.Code(nil); got != codes.OK {
		t.Errorf("sdk.Code(nil) = %v, want OK", got)
	}
}

func TestPanicsKeepServing(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	ctx := t.Context()

	_, err := i.Call(ctx, "panic", "boom")
	wantStatus(t, "panic(boom)", err, codes.Internal, "panic: driver panicked: boom")
	callOK(t, i)

	var got []any
	for v, err := range i.StreamingCall(ctx, "stream_panic") {
		if err != nil {
			wantStatus(t, "stream_panic()", err, codes.Internal, "stream_panic: driver panicked: stream boom")
			break
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []any{"first"}) {
		t.Errorf("stream_panic() yielded %v before failing, want [first]", got)
	}
	callOK(t, i)

	conn, err := i.Stream(ctx, "echo_panic")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(conn)
	wantStatus(t, "echo_panic", err, codes.Internal, "echo_panic: driver panicked: echo boom after hi")
	callOK(t, i)
}

func TestByteStream(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	conn, err := i.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	sent := []string{"hello ", "from ", strings.Repeat("the client ", 10_000)}
	for _, p := range sent {
		if _, err := conn.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(sent, ""); string(got) != want {
		t.Errorf("echo sent back %d bytes, want the %d sent", len(got), len(want))
	}
}

func TestStreamingCall(t *testing.T) {
	t.Parallel()
	i, _ := startTest(t)
	var got []any
	for v, err := range i.StreamingCall(t.Context(), "count", 3) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []any{1.0, 2.0, 3.0}) {
		t.Errorf("count(3) = %v, want [1 2 3]", got)
	}
}

func TestStreamingCallCancelled(t *testing.T) {
	t.Parallel()
	i, d := startTest(t)
	for v, err := range i.StreamingCall(t.Context(), "wait") {
		if err != nil || v != "started" {
			t.Fatalf("wait() yielded %v, %v; want started", v, err)
		}
		break // cancels the call
	}
	select {
	case <-d.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the driver's wait() did not see its context cancelled after the client went away")
	}
	callOK(t, i)
}

func TestLifecycleHooks(t *testing.T) {
	t.Parallel()
	i, d := startTest(t)
	ctx := t.Context()
	if n := d.resets.Load(); n != 1 {
		t.Errorf("after Start, Reset ran %d times, want 1", n)
	}
	if err := i.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if n := d.resets.Load(); n != 2 {
		t.Errorf("after Reset, Reset ran %d times, want 2", n)
	}
	for range 2 {
		if _, err := i.RPC.Close(ctx, &pluginv1.CloseRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.closes.Load(); n != 1 {
		t.Errorf("after two Close calls, Close ran %d times, want 1", n)
	}
	_, err := i.Call(ctx, "ok")
	wantStatus(t, "ok() after Close", err, codes.Unavailable, "the driver is closed")
}

// handingOver counts its Closes and its HandOvers.
type handingOver struct {
	sdk.Base
	closes, handovers atomic.Int32
}

func (*handingOver) Exports() []sdk.Method            { return nil }
func (d *handingOver) Close(context.Context) error    { d.closes.Add(1); return nil }
func (d *handingOver) HandOver(context.Context) error { d.handovers.Add(1); return nil }

// TestHandOver: a Close with handover set calls the driver's HandOver
// instead of its Close (once, like Close); a driver without HandOver is
// Closed.
func TestHandOver(t *testing.T) {
	t.Parallel()
	d := &handingOver{}
	i, err := sdktest.Configure(t, driverType("handover", d), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := i.RPC.Close(t.Context(), &pluginv1.CloseRequest{Handover: true}); err != nil {
			t.Fatal(err)
		}
	}
	if h, c := d.handovers.Load(), d.closes.Load(); h != 1 || c != 0 {
		t.Errorf("after two handovers: HandOver ran %d times and Close %d; want 1 and 0", h, c)
	}

	plain, td := startTest(t)
	if _, err := plain.RPC.Close(t.Context(), &pluginv1.CloseRequest{Handover: true}); err != nil {
		t.Fatal(err)
	}
	if n := td.closes.Load(); n != 1 {
		t.Errorf("a driver without HandOver, handed over: Close ran %d times, want 1", n)
	}
}

// hookErrors is a driver whose hooks fail.
type hookErrors struct{ sdk.Base }

func (hookErrors) Exports() []sdk.Method { return nil }
func (hookErrors) Reset(context.Context) error {
	return fmt.Errorf("relay stuck: %w", sdk.ErrIO)
}
func (hookErrors) Close(context.Context) error { panic("close boom") }

func TestLifecycleHookErrors(t *testing.T) {
	t.Parallel()
	i, err := sdktest.Configure(t, driverType("hooks", hookErrors{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "Reset", i.Reset(t.Context()), codes.Internal, "relay stuck: i/o error")
	_, err = i.RPC.Close(t.Context(), &pluginv1.CloseRequest{})
	wantStatus(t, "Close", err, codes.Internal, "Close: driver panicked: close boom")
}

// console is a driver that describes and labels itself from its config.
type console struct {
	sdk.Base
	port string
}

// Interface guards
var (
	_ sdk.Describer = (*console)(nil)
	_ sdk.Labeler   = (*console)(nil)
)

func (c *console) Exports() []sdk.Method { return nil }
func (c *console) Description() string   { return "serial console on " + c.port }
func (c *console) Labels() map[string]string {
	return map[string]string{"jumpwire.dev/port": c.port}
}

type plain struct{ sdk.Base }

func (plain) Exports() []sdk.Method { return nil }

func TestDescriberLabeler(t *testing.T) {
	t.Parallel()
	type config struct {
		Port string `json:"port"`
	}
	typ := sdk.Type{
		Name:        "console",
		Description: "Serial console",
		New:         sdk.Factory(func(c config) (*console, error) { return &console{port: c.Port}, nil }),
	}
	i := sdktest.Start(t, typ, map[string]any{"port": "/dev/ttyUSB0"})
	if got, want := i.Configured.Description, "serial console on /dev/ttyUSB0"; got != want {
		t.Errorf("description %q, want %q", got, want)
	}
	if got := i.Configured.Labels; len(got) != 1 || got["jumpwire.dev/port"] != "/dev/ttyUSB0" {
		t.Errorf("labels %v, want jumpwire.dev/port=/dev/ttyUSB0", got)
	}

	typ = driverType("plain", plain{})
	typ.Description = "A plain driver"
	i = sdktest.Start(t, typ, nil)
	if got := i.Configured.Description; got != "A plain driver" {
		t.Errorf("without Describer: description %q, want the type's %q", got, "A plain driver")
	}
	if got := i.Configured.Labels; len(got) != 0 {
		t.Errorf("without Labeler: labels %v, want none", got)
	}
}
