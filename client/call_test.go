package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

// echoLab is the lab with a driver "echo" whose unary "echo" returns its arguments as a list, and
// whose "fail" returns the error in fail.
func echoLab(fail error) *fakeexporter.Exporter {
	fake := fakeexporter.Lab()
	fake.Root.Children = append(fake.Root.Children, &fakeexporter.Driver{
		Name: "echo", Type: "echo",
		Methods: []fakeexporter.Method{
			{Name: "echo", Call: func(_ context.Context, args []any) (any, error) { return args, nil }},
			{Name: "one", Call: func(_ context.Context, args []any) (any, error) { return args[0], nil }},
			{Name: "fail", Call: func(context.Context, []any) (any, error) { return nil, fail }},
		},
	})
	return fake
}

type setting struct {
	Name  string `json:"name"`
	Level int    `json:"level"`
}

func TestCallArguments(t *testing.T) {
	fake := echoLab(nil)
	c := dial(t, fake)
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	echo, _ := tree.Lookup("echo")
	tests := []struct {
		name string
		arg  any
		want any // as the driver receives it
	}{
		{"nil", nil, nil},
		{"bool", true, true},
		{"string", "text", "text"},
		{"int", 5, 5.0},
		{"negative int64", int64(-1), -1.0},
		{"uint8", uint8(200), 200.0},
		{"float32", float32(0.5), 0.5},
		{"largest exact int", int64(1 << 53), float64(1 << 53)},
		{"json.Number int", json.Number("12"), 12.0},
		{"json.Number float", json.Number("1.5e3"), 1500.0},
		{"[]string", []string{"a", "b"}, []any{"a", "b"}},
		{"[2]int", [2]int{1, 2}, []any{1.0, 2.0}},
		{"map[string]int", map[string]int{"a": 1}, map[string]any{"a": 1.0}},
		{"nested", map[string]any{"l": []any{1, "x", nil}}, map[string]any{"l": []any{1.0, "x", nil}}},
		{"struct", setting{"x", 3}, map[string]any{"name": "x", "level": 3.0}},
		{"pointer", &setting{"y", 4}, map[string]any{"name": "y", "level": 4.0}},
		{"nil pointer", (*setting)(nil), nil},
		{"time via json.Marshaler", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), "2025-01-02T03:04:05Z"},
		{"*structpb.Value", structpb.NewStringValue("pb"), "pb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Call(t.Context(), echo.UUID, "one", tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("driver received %#v, want %#v", got, tt.want)
			}
		})
	}

	t.Run("several", func(t *testing.T) {
		got, err := c.Call(t.Context(), echo.UUID, "echo", 1, "two", false)
		if err != nil {
			t.Fatal(err)
		}
		if want := []any{1.0, "two", false}; !reflect.DeepEqual(got, want) {
			t.Errorf("result %#v, want %#v", got, want)
		}
		calls := fake.Calls()
		last := calls[len(calls)-1]
		if last.Path != "echo" || last.Method != "echo" || len(last.Args) != 3 {
			t.Errorf("fake saw %+v", last)
		}
	})
	t.Run("no arguments, null result", func(t *testing.T) {
		power, _ := tree.Lookup("power")
		got, err := c.Call(t.Context(), power.UUID, "on")
		if err != nil || got != nil {
			t.Errorf("Call = %#v, %v; want nil, nil", got, err)
		}
	})
}

func TestCallBadArguments(t *testing.T) {
	fake := echoLab(nil)
	c := dial(t, fake)
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	echo, _ := tree.Lookup("echo")
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"int beyond 2^53", []any{int64(1<<53 + 1)}, "echo.echo: argument 1: integer 9007199254740993 does not fit in a JSON number (limit 2^53)"},
		{"uint beyond 2^53", []any{"ok", uint64(math.MaxUint64)}, "echo.echo: argument 2: integer 18446744073709551615 does not fit in a JSON number (limit 2^53)"},
		{"json.Number beyond 2^53", []any{json.Number("99999999999999999999")}, "echo.echo: argument 1: integer 99999999999999999999 does not fit in a JSON number (limit 2^53)"},
		{"bytes", []any{[]byte("x")}, "echo.echo: argument 1: bytes cannot travel as a JSON value (upload them through a resource stream)"},
		{"NaN", []any{math.NaN()}, "echo.echo: argument 1: NaN is not a JSON number"},
		{"int keys", []any{map[int]string{1: "a"}}, "echo.echo: argument 1: map keys must be strings, not int"},
		{"nested", []any{map[string]any{"l": []any{1, make(chan int)}}}, `echo.echo: argument 1: "l": [1]: a chan int cannot travel as a JSON value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fake.Calls())
			_, err := c.Call(t.Context(), echo.UUID, "echo", tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v\nwant %q", err, tt.want)
			}
			if len(fake.Calls()) != before {
				t.Error("the call was sent")
			}
		})
	}
}

func TestCallResults(t *testing.T) {
	want := map[string]any{"s": "x", "n": 1.5, "b": true, "z": nil, "l": []any{"a", 2.0}}
	fake := fakeexporter.Lab()
	fake.Root.Methods = []fakeexporter.Method{{Name: "info", Call: func(context.Context, []any) (any, error) { return want, nil }}}
	c := dial(t, fake)
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Call(t.Context(), tree.Root.UUID, "info")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result %#v, want %#v", got, want)
	}
}

func TestCallErrors(t *testing.T) {
	tests := []struct {
		name    string
		fail    error
		method  string
		want    string
		code    codes.Code
		message string
	}{
		{"driver exited", status.Error(codes.Unavailable, `driver "echo" exited (signal: killed)`), "fail",
			`echo.fail: unavailable: driver "echo" exited (signal: killed)`, codes.Unavailable, `driver "echo" exited (signal: killed)`},
		{"bad argument", status.Error(codes.InvalidArgument, "want a bool"), "fail",
			"echo.fail: invalid argument: want a bool", codes.InvalidArgument, "want a bool"},
		{"unknown code keeps just the message", status.Error(codes.Unknown, "relay stuck"), "fail",
			"echo.fail: relay stuck", codes.Unknown, "relay stuck"},
		{"multi-line message", status.Error(codes.Internal, "read failed:\n  i/o error\n"), "fail",
			"echo.fail: internal: read failed:; i/o error", codes.Internal, "read failed:\n  i/o error\n"},
		{"kind said twice", status.Error(codes.InvalidArgument, "channel must be 1-4, got 9: invalid argument"), "fail",
			"echo.fail: invalid argument: channel must be 1-4, got 9", codes.InvalidArgument, "channel must be 1-4, got 9: invalid argument"},
		{"method named twice", status.Error(codes.InvalidArgument, "fail: value: expected boolean, got 2"), "fail",
			"echo.fail: invalid argument: value: expected boolean, got 2", codes.InvalidArgument, "fail: value: expected boolean, got 2"},
		{"sdk kind words", status.Error(codes.FailedPrecondition, "outlet 3 is held by another lease: busy"), "fail",
			"echo.fail: failed precondition: outlet 3 is held by another lease", codes.FailedPrecondition, "outlet 3 is held by another lease: busy"},
		{"no message", status.Error(codes.DeadlineExceeded, ""), "fail",
			"echo.fail: deadline exceeded", codes.DeadlineExceeded, ""},
		{"unknown method", nil, "nope",
			`echo.nope: not found: driver "echo" has no method "nope"`, codes.NotFound, `driver "echo" has no method "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, echoLab(tt.fail))
			tree, err := c.Tree(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			echo, _ := tree.Lookup("echo")
			_, err = c.Call(t.Context(), echo.UUID, tt.method)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v\nwant %q", err, tt.want)
			}
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Op != "echo."+tt.method || ce.Code() != tt.code {
				t.Errorf("errors.As: %+v", ce)
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != tt.code || st.Message() != tt.message {
				t.Errorf("status.FromError = %v %q, %v; want %v %q", st.Code(), st.Message(), ok, tt.code, tt.message)
			}
		})
	}
}

func TestCallNamesUnknownUUID(t *testing.T) {
	c := dial(t, fakeexporter.Lab())
	_, err := c.Call(t.Context(), "uuid-nowhere", "on")
	want := "uuid-nowhere.on: not found: no driver with uuid uuid-nowhere"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q (a client that never read the tree names the call by uuid)", err, want)
	}
}

func TestCallCanceled(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Root.Methods = []fakeexporter.Method{{Name: "hang", Call: func(ctx context.Context, _ []any) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}}
	c := dial(t, fake)
	if _, err := c.Tree(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, fakeexporter.UUID(""), "hang")
	if status.Code(err) != codes.DeadlineExceeded || err.Error() != "hang: deadline exceeded" {
		t.Errorf("error %v, want hang: deadline exceeded", err)
	}
}

func TestStreamingCall(t *testing.T) {
	canceled := make(chan struct{})
	fake := fakeexporter.Lab()
	fake.Root.Methods = []fakeexporter.Method{
		{Name: "count", Kind: "streaming", Stream: func(ctx context.Context, args []any, send func(any) error) error {
			for i := range int(args[0].(float64)) {
				if err := send(i); err != nil {
					return err
				}
			}
			return nil
		}},
		{Name: "forever", Kind: "streaming", Stream: func(ctx context.Context, _ []any, send func(any) error) error {
			defer close(canceled)
			for i := 0; ; i++ {
				if err := send(i); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}},
		{Name: "broken", Kind: "streaming", Stream: func(ctx context.Context, _ []any, send func(any) error) error {
			if err := send("first"); err != nil {
				return err
			}
			return status.Error(codes.Internal, "device unplugged")
		}},
	}
	c := dial(t, fake)
	if _, err := c.Tree(t.Context()); err != nil {
		t.Fatal(err)
	}
	root := fakeexporter.UUID("")

	t.Run("all results", func(t *testing.T) {
		var got []any
		for v, err := range c.StreamingCall(t.Context(), root, "count", 3) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if want := []any{0.0, 1.0, 2.0}; !reflect.DeepEqual(got, want) {
			t.Errorf("results %v, want %v", got, want)
		}
	})
	t.Run("early break cancels the call", func(t *testing.T) {
		n := 0
		for _, err := range c.StreamingCall(t.Context(), root, "forever") {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
		select {
		case <-canceled:
		case <-time.After(10 * time.Second):
			t.Fatal("the driver was not canceled after the loop broke")
		}
	})
	t.Run("error after a result", func(t *testing.T) {
		var got []any
		var errs []error
		for v, err := range c.StreamingCall(t.Context(), root, "broken") {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			got = append(got, v)
		}
		if !reflect.DeepEqual(got, []any{"first"}) || len(errs) != 1 {
			t.Fatalf("results %v, errors %v", got, errs)
		}
		if want := "broken: internal: device unplugged"; errs[0].Error() != want || status.Code(errs[0]) != codes.Internal {
			t.Errorf("error %v, want %q", errs[0], want)
		}
	})
	t.Run("bad argument", func(t *testing.T) {
		for _, err := range c.StreamingCall(t.Context(), root, "count", []byte("x")) {
			if err == nil || !strings.HasPrefix(err.Error(), "count: argument 1: bytes") {
				t.Errorf("error %v", err)
			}
		}
	})
	t.Run("unary method", func(t *testing.T) {
		for _, err := range c.StreamingCall(t.Context(), fakeexporter.UUID("power"), "on") {
			if status.Code(err) != codes.Unimplemented {
				t.Errorf("error %v, want Unimplemented", err)
			}
		}
	})
}

func TestCodeText(t *testing.T) {
	for code, want := range map[codes.Code]string{
		codes.NotFound: "not found", codes.Unavailable: "unavailable", codes.DeadlineExceeded: "deadline exceeded",
		codes.InvalidArgument: "invalid argument", codes.OK: "ok", codes.Code(99): "code(99)",
	} {
		if got := client.CodeText(code); got != want {
			t.Errorf("CodeText(%v) = %q, want %q", code, got, want)
		}
	}
}
