package sdk

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// Conn is the connection a byte-stream method (see [ExportStream]) serves.
// Read returns io.EOF once the client half-closed; Write blocks while the
// client does not keep up (backpressure); CloseWrite tells the client no more
// data follows; Close ends the stream in both directions.
//
// The Conn the SDK passes is also an io.WriterTo and an io.ReaderFrom:
// io.Copy to or from another connection moves the bytes without copying
// them in between. Its ReadFrom does not half-close; call CloseWrite after.
type Conn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	CloseWrite() error
	Close() error
}

// Method is one exported method of a driver. Build it with [Export] or
// [ExportStream].
type Method struct {
	name        string
	description string
	kind        pluginv1.MethodKind
	fn          reflect.Value
	params      []reflect.Type    // after the context
	names       []string          // the parameters' names (Params), nil when unnamed
	defaults    []*structpb.Value // per parameter, nil where none (Default); nil when unnamed
	variadic    bool
	result      reflect.Type // nil for error-only methods; element type for streaming
	stream      func(ctx context.Context, conn Conn) error
	err         error // a signature problem, reported when the plugin starts
}

// Name returns the method's name as clients call it.
func (m Method) Name() string { return m.name }

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// Export exports fn as the method name. fn's first parameter is a
// context.Context, cancelled when the caller goes away; the remaining
// parameters are the positional arguments, decoded from JSON values into their
// Go types (variadic functions accept any number of trailing arguments). fn
// returns one of:
//
//	error                      a call that returns nothing (null)
//	(T, error)                 a call that returns one result
//	iter.Seq2[T, error]        a streaming call: each T is sent as it is yielded
//
// Options name the parameters and give them defaults:
//
//	sdk.Export("on", r.On, "Switch a channel on or off",
//		sdk.Params("channel", "state"), sdk.Default("state", true))
//
// A signature or option that does not fit is reported when the plugin starts.
func Export(name string, fn any, description string, opts ...ExportOption) Method {
	m := export(name, fn, description)
	m.applyOptions("Export", opts)
	return m
}

func export(name string, fn any, description string) Method {
	m := Method{name: name, description: description, kind: pluginv1.MethodKind_METHOD_KIND_UNARY}
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		m.err = fmt.Errorf("sdk: Export(%q): expected a function, got %T", name, fn)
		return m
	}
	t := v.Type()
	if t.NumIn() == 0 || t.In(0) != contextType {
		m.err = fmt.Errorf("sdk: Export(%q): the first parameter of %s must be context.Context", name, t)
		return m
	}
	for i := 1; i < t.NumIn(); i++ {
		p := t.In(i)
		if p == reflect.TypeFor[[]byte]() {
			m.err = fmt.Errorf("sdk: Export(%q): parameter %d is []byte, which clients cannot send; take a string, or use ExportStream for bytes", name, i)
			return m
		}
		m.params = append(m.params, p)
	}
	m.variadic = t.IsVariadic()
	if last := t.In(t.NumIn() - 1); m.variadic && (last.Elem() == resourceType || last.Elem() == downloadType) {
		m.err = fmt.Errorf("sdk: Export(%q): a variadic parameter cannot be a Resource or a Download; take each as its own parameter", name)
		return m
	}
	m.fn = v
	switch {
	case t.NumOut() == 1 && t.Out(0) == errorType:
	case t.NumOut() == 2 && t.Out(1) == errorType:
		m.result = t.Out(0)
	case t.NumOut() == 1 && isSeq2(t.Out(0)):
		m.kind = pluginv1.MethodKind_METHOD_KIND_STREAMING
		m.result = t.Out(0).In(0).In(0)
	default:
		m.err = fmt.Errorf("sdk: Export(%q): %s must return error, (T, error) or iter.Seq2[T, error]", name, t)
	}
	if name == "" {
		m.err = fmt.Errorf("sdk: Export: a method needs a name")
	}
	return m
}

// isSeq2 reports whether t is iter.Seq2[T, error] (or a type with that underlying shape).
func isSeq2(t reflect.Type) bool {
	if t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 0 {
		return false
	}
	y := t.In(0)
	return y.Kind() == reflect.Func && y.NumIn() == 2 && y.In(1) == errorType &&
		y.NumOut() == 1 && y.Out(0).Kind() == reflect.Bool
}

// ExportStream exports fn as the byte-stream method name. fn serves one
// stream: it reads what the client sends from conn and writes what the client
// receives. The stream ends when fn returns; ctx is cancelled when the client
// goes away or the session ends.
//
// The client learns that the stream is open when fn first reads, writes or
// half-closes conn: set up first (subscribe to the device, dial the target),
// then do I/O. An error fn returns before that fails the client's open with
// that error, and nothing the device sends after the client saw the stream
// open can have gone elsewhere.
func ExportStream(name string, fn func(ctx context.Context, conn Conn) error, description string) Method {
	m := Method{name: name, description: description, kind: pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM, stream: fn}
	if fn == nil {
		m.err = fmt.Errorf("sdk: ExportStream(%q): nil function", name)
	}
	return m
}

// info describes the method on the wire.
func (m *Method) info() *pluginv1.Method {
	pm := &pluginv1.Method{Name: m.name, Description: m.description, Kind: m.kind, Variadic: m.variadic}
	for i, p := range m.params {
		if m.variadic && i == len(m.params)-1 {
			p = p.Elem()
		}
		pm.Params = append(pm.Params, jsonType(p))
	}
	pm.ParamInfo = m.paramInfo(pm.Params)
	switch {
	case m.kind == pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM:
		pm.Result = "bytes"
	case m.result == nil:
		pm.Result = "null"
	default:
		pm.Result = jsonType(m.result)
	}
	return pm
}

// signature renders the method for messages: "set_dtr(boolean)", or with
// named parameters "on(channel integer, state boolean = true)".
func (m *Method) signature() string {
	p := m.info().Params
	for i := range p {
		if m.names != nil {
			p[i] = m.names[i] + " " + p[i]
		}
		if m.variadic && i == len(p)-1 {
			p[i] += "..."
		} else if m.defaults != nil && m.defaults[i] != nil {
			if b, err := m.defaults[i].MarshalJSON(); err == nil {
				p[i] += " = " + string(b)
			}
		}
	}
	return m.name + "(" + strings.Join(p, ", ") + ")"
}

// args decodes the positional arguments into the parameters' Go values,
// filling in the defaults of parameters left out. A Resource or Download
// parameter waits, under ctx, for its stream in ups; the caller finishes the
// streams returned once the method is over with them (also when args fails).
func (m *Method) args(ctx context.Context, ups *uploads, in []*structpb.Value) ([]reflect.Value, []*upload, error) {
	fixed, required := m.fixed(), m.required()
	if len(in) < required || (!m.variadic && len(in) > fixed) {
		want := fmt.Sprintf("%d argument", required)
		if required != 1 {
			want += "s"
		}
		switch {
		case m.variadic:
			want = "at least " + want
		case required < fixed:
			want = fmt.Sprintf("%d to %d arguments", required, fixed)
		}
		return nil, nil, statusf(codes.InvalidArgument, "%s takes %s, got %d (call it as %s)", m.name, want, len(in), m.signature())
	}
	var taken []*upload
	if len(in) < fixed { // the rest have defaults
		in = append(in[:len(in):len(in)], m.defaults[len(in):fixed]...)
	}
	out := make([]reflect.Value, 0, len(m.params)+1)
	out = append(out, reflect.ValueOf(ctx))
	var rest reflect.Value
	if m.variadic {
		rest = reflect.MakeSlice(m.params[fixed], len(in)-fixed, len(in)-fixed)
	}
	for i, a := range in {
		var dst reflect.Value
		if i < fixed {
			dst = reflect.New(m.params[i]).Elem()
			out = append(out, dst)
		} else {
			dst = rest.Index(i - fixed)
		}
		where := m.name + ": " + m.paramLabel(i)
		switch dst.Type() {
		case resourceType:
			u, err := ups.resourceArg(ctx, a, where)
			if err != nil {
				return nil, taken, err
			}
			taken = append(taken, u)
			dst.Set(reflect.ValueOf(Resource(u)))
			continue
		case downloadType:
			u, err := ups.downloadArg(ctx, a, where)
			if err != nil {
				return nil, taken, err
			}
			taken = append(taken, u)
			dst.Set(reflect.ValueOf(Download(&download{u: u})))
			continue
		}
		if err := decodeValue(a, dst, where); err != nil {
			return nil, taken, statusf(codes.InvalidArgument, "%v", err)
		}
	}
	if m.variadic {
		out = append(out, rest)
	}
	return out, taken, nil
}

// finishAll tells each resource stream that the method is over with it,
// and how the method ended (err).
func finishAll(ups []*upload, err error) {
	for _, u := range ups {
		u.finish(err)
	}
}

// invoke calls the method's function with decoded arguments.
func (m *Method) invoke(args []reflect.Value) []reflect.Value {
	if m.variadic {
		return m.fn.CallSlice(args)
	}
	return m.fn.Call(args)
}

// call runs a unary method. A panic becomes an INTERNAL error for this call.
func (m *Method) call(ctx context.Context, log logFunc, ups *uploads, in []*structpb.Value) (res *structpb.Value, err error) {
	args, taken, err := m.args(ctx, ups, in)
	defer func() { finishAll(taken, err) }()
	if err != nil {
		return nil, err
	}
	defer recoverCall(m.name, log, &err)
	out := m.invoke(args)
	if e, _ := out[len(out)-1].Interface().(error); e != nil {
		return nil, toStatus(e)
	}
	if m.result == nil {
		return structpb.NewNullValue(), nil
	}
	v, err := encodeValue(out[0])
	if err != nil {
		return nil, statusf(codes.Internal, "%s: encoding its result: %v", m.name, err)
	}
	return v, nil
}

// seq runs a streaming method, sending each result through send.
func (m *Method) seq(ctx context.Context, log logFunc, ups *uploads, in []*structpb.Value, send func(*structpb.Value) error) (err error) {
	args, taken, err := m.args(ctx, ups, in)
	defer func() { finishAll(taken, err) }()
	if err != nil {
		return err
	}
	defer recoverCall(m.name, log, &err)
	out := m.invoke(args)
	seq := out[0]
	if seq.IsNil() {
		return nil
	}
	var sendErr, yieldErr error
	yield := reflect.MakeFunc(seq.Type().In(0), func(a []reflect.Value) []reflect.Value {
		if e, _ := a[1].Interface().(error); e != nil {
			yieldErr = e
			return []reflect.Value{reflect.ValueOf(false)}
		}
		v, err := encodeValue(a[0])
		if err != nil {
			sendErr = statusf(codes.Internal, "%s: encoding a result: %v", m.name, err)
			return []reflect.Value{reflect.ValueOf(false)}
		}
		if err := send(v); err != nil {
			sendErr = err
			return []reflect.Value{reflect.ValueOf(false)}
		}
		return []reflect.Value{reflect.ValueOf(ctx.Err() == nil)}
	})
	seq.Call([]reflect.Value{yield})
	switch {
	case yieldErr != nil:
		return toStatus(yieldErr)
	case sendErr != nil:
		return sendErr
	}
	return toStatus(ctx.Err())
}

// logFunc logs a panic with its stack.
type logFunc func(msg string, args ...any)

// recoverCall turns a panic in a driver's method into an INTERNAL error.
func recoverCall(method string, log logFunc, err *error) {
	r := recover()
	if r == nil {
		return
	}
	log("panic in method", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*err = statusf(codes.Internal, "%s: driver panicked: %v", method, r)
}
