package main

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

// callLab is the lab plus a driver "echo": "args" returns its arguments as a list, "one" its
// first argument, "lines" streams its arguments one by one, "fail" fails with the driver-exited
// error; and a root method "info".
func callLab() *fakeexporter.Exporter {
	fake := fakeexporter.Lab()
	fake.Root.Methods = []fakeexporter.Method{{Name: "info", Call: func(context.Context, []any) (any, error) {
		return "lab-1, 3 drivers", nil
	}}}
	fake.Root.Children = append(fake.Root.Children, &fakeexporter.Driver{
		Name: "echo", Type: "echo",
		Methods: []fakeexporter.Method{
			{Name: "args", Call: func(_ context.Context, args []any) (any, error) { return args, nil }},
			{Name: "one", Call: func(_ context.Context, args []any) (any, error) { return args[0], nil }},
			{Name: "lines", Kind: "streaming", Stream: func(_ context.Context, args []any, send func(any) error) error {
				for _, a := range args {
					if err := send(a); err != nil {
						return err
					}
				}
				return nil
			}},
			{Name: "fail", Call: func(context.Context, []any) (any, error) {
				return nil, status.Error(codes.Unavailable, `driver "echo" exited (signal: killed)`)
			}},
		},
	})
	return fake
}

func TestCall(t *testing.T) {
	sock := callLab().Start(t)
	tests := []struct {
		name   string
		args   []string
		stdout string
	}{
		{"null prints nothing", []string{"call", "power", "on"}, ""},
		{"string raw", []string{"call", "echo", "one", `"two words"`}, "two words\n"},
		{"string with newline", []string{"call", "echo", "one", `"line\n"`}, "line\n"},
		{"bare word is a string", []string{"call", "echo", "one", "hello"}, "hello\n"},
		{"number", []string{"call", "echo", "one", "5"}, "5\n"},
		{"bool", []string{"call", "echo", "one", "true"}, "true\n"},
		{"object", []string{"call", "echo", "one", `{"a":1,"b":"<x>"}`}, `{"a":1,"b":"<x>"}` + "\n"},
		{"all kinds of args", []string{"call", "echo", "args", "5", "true", `"text"`, `{"a":1}`, "hello", "null", "[1,2]", "1.5", "--", "-1"},
			`[5,true,"text",{"a":1},"hello",null,[1,2],1.5,-1]` + "\n"},
		{"root by dot", []string{"call", ".", "info"}, "lab-1, 3 drivers\n"},
		{"root by empty path", []string{"call", "", "info"}, "lab-1, 3 drivers\n"},
		{"nested path", []string{"call", "dut.power", "off"}, ""},
		{"streaming", []string{"call", "dut.power", "read"}, "{\"current\":2,\"voltage\":5}\n{\"current\":2.5,\"voltage\":5}\n"},
		{"streaming strings and null", []string{"call", "echo", "lines", "a", "null", "3"}, "a\n3\n"},

		{"json null", []string{"-o", "json", "call", "power", "on"}, "null\n"},
		{"json string", []string{"call", "echo", "one", "hello", "-o", "json"}, "\"hello\"\n"},
		{"json streaming", []string{"call", "echo", "lines", "a", "null", "3", "--output=json"}, "\"a\"\nnull\n3\n"},
		{"json object", []string{"-o", "json", "call", "echo", "one", `{"a":[1]}`}, `{"a":[1]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jw(t, sock, tt.args...).check(t, tt.stdout, "", 0)
		})
	}
}

func TestCallSendsArguments(t *testing.T) {
	fake := callLab()
	sock := fake.Start(t)
	jw(t, sock, "serial", "set_dtr", "true").check(t, "", "", 0)
	jw(t, sock, "call", "echo", "args", "--", "-1", `{"k":[true]}`, "").check(t, `[-1,{"k":[true]},""]`+"\n", "", 0)
	calls := fake.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls %+v", calls)
	}
	if c := calls[0]; c.Path != "serial" || c.Method != "set_dtr" || !reflect.DeepEqual(c.Args, []any{true}) {
		t.Errorf("first call %+v", c)
	}
	if c := calls[1]; !reflect.DeepEqual(c.Args, []any{-1.0, map[string]any{"k": []any{true}}, ""}) {
		t.Errorf("second call %+v", c)
	}
}

func TestShortForm(t *testing.T) {
	fake := callLab()
	sock := fake.Start(t)
	tests := []struct {
		args   []string
		stdout string
		path   string
	}{
		{[]string{"power", "on"}, "", "power.on"},
		{[]string{"dut", "power", "read"}, "{\"current\":2,\"voltage\":5}\n{\"current\":2.5,\"voltage\":5}\n", "dut.power.read"},
		{[]string{"dut.power", "read", "-o", "json"}, "{\"current\":2,\"voltage\":5}\n{\"current\":2.5,\"voltage\":5}\n", "dut.power.read"},
		{[]string{"info"}, "lab-1, 3 drivers\n", ".info"},
		{[]string{"echo", "args", "--", "-1", "x"}, "[-1,\"x\"]\n", "echo.args"},
		{[]string{"--", "echo", "one", "-2"}, "-2\n", "echo.one"},
		{[]string{"echo", "args", "a", "b", "--stream"}, "a\nb\n", "echo.args"}, // each element of the list
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			before := len(fake.Calls())
			r := jw(t, sock, tt.args...)
			if tt.path == "echo.args" && tt.args[len(tt.args)-1] == "--stream" {
				// --stream on a unary method: the exporter says it does not stream.
				r.check(t, "", "jw: echo.args: unimplemented: method \"args\" does not stream\n", 1)
				return
			}
			r.check(t, tt.stdout, "", 0)
			calls := fake.Calls()
			if len(calls) != before+1 {
				t.Fatalf("%d calls, want 1", len(calls)-before)
			}
			if c := calls[len(calls)-1]; c.Path+"."+c.Method != tt.path {
				t.Errorf("called %s.%s, want %s", c.Path, c.Method, tt.path)
			}
		})
	}
}

// A plain Jumpstarter exporter does not say which methods stream: --stream does.
func TestStreamFlag(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Root.Children[0].Plain = true
	sock := fake.Start(t)
	jw(t, sock, "power", "read").check(t, "", "jw: power.read: unimplemented: method \"read\" streams its results\n", 1)
	readings := "{\"current\":2,\"voltage\":5}\n{\"current\":2.5,\"voltage\":5}\n"
	jw(t, sock, "power", "read", "--stream").check(t, readings, "", 0)
	jw(t, sock, "call", "--stream", "power", "read").check(t, readings, "", 0)
	// Without a complete method list the exporter decides what exists.
	jw(t, sock, "power", "nope").check(t, "", "jw: power.nope: not found: driver \"power\" has no method \"nope\"\n", 1)
}

func TestCallErrors(t *testing.T) {
	sock := callLab().Start(t)
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"driver error", []string{"echo", "fail"},
			`jw: echo.fail: unavailable: driver "echo" exited (signal: killed)`},
		{"driver error via call", []string{"call", "echo", "fail"},
			`jw: echo.fail: unavailable: driver "echo" exited (signal: killed)`},
		{"exporter rejects arguments", []string{"serial", "set_dtr"},
			`jw: serial.set_dtr: invalid argument: set_dtr takes 1 argument, got 0`},
		{"unknown first word", []string{"x", "on"},
			`jw: unknown command or driver "x"; drivers: power, serial, dut, echo; commands: call, console, driver, dump, end-session, flash, forward, logs, pipe, plugins, reload, run, shell, status, top, tree`},
		{"missing method", []string{"power"},
			`jw: missing method for power; methods: off, on, read`},
		{"missing method of a group", []string{"dut"},
			`jw: missing driver or method for dut; drivers: power`},
		{"unknown method", []string{"dut", "power", "of"},
			`jw: unknown method "of" for dut.power; methods: off, on, read`},
		{"unknown driver or method", []string{"dut", "pwer", "on"},
			`jw: unknown driver or method "pwer" in dut; drivers: power`},
		{"dotted path partly wrong", []string{"dut.pwer", "on"},
			`jw: unknown command or driver "dut.pwer"; drivers: power, serial, dut, echo; commands: call, console, driver, dump, end-session, flash, forward, logs, pipe, plugins, reload, run, shell, status, top, tree`},
		{"call: unknown path", []string{"call", "dut.pwer", "on"},
			`jw: no such driver "pwer" in dut; drivers: power`},
		{"call: unknown method", []string{"call", "serial", "nope"},
			`jw: unknown method "nope" for serial; methods: connect, set_dtr`},
		{"call: unknown root method", []string{"call", ".", "nope"},
			`jw: unknown driver or method "nope" in the root; drivers: power, serial, dut, echo; methods: info`},
		{"byte stream", []string{"call", "serial", "connect"},
			`jw: serial.connect is a byte stream, not a call (open it with "jw console serial" or "jw pipe serial connect")`},
		{"byte stream with arguments", []string{"serial", "connect", "x"},
			`jw: serial.connect is a byte stream and takes no arguments`},
		{"integer too large", []string{"echo", "one", "9007199254740993"},
			`jw: echo.one: argument 1: integer 9007199254740993 does not fit in a JSON number (limit 2^53)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jw(t, sock, tt.args...).check(t, "", tt.stderr+"\n", 1)
		})
	}
}

func TestCallTimeout(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Root.Methods = []fakeexporter.Method{{Name: "hang", Call: func(ctx context.Context, _ []any) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}}
	sock := fake.Start(t)
	jw(t, sock, "--timeout", "100ms", "hang").check(t, "", "jw: hang: deadline exceeded\n", 1)
}

func TestStreamErrorAfterResults(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Root.Children[0].Methods[2].Stream = func(_ context.Context, _ []any, send func(any) error) error {
		if err := send(map[string]any{"voltage": 5.0, "current": 1.0}); err != nil {
			return err
		}
		return status.Error(codes.Internal, "sensor unplugged")
	}
	sock := fake.Start(t)
	jw(t, sock, "power", "read").check(t, "{\"current\":1,\"voltage\":5}\n", "jw: power.read: internal: sensor unplugged\n", 1)
}

func TestCallHelp(t *testing.T) {
	r := jw(t, "", "call", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "A word that is not valid\nJSON is taken as a string") ||
		!strings.Contains(r.stdout, `after "--"`) {
		t.Errorf("call --help (code %d) does not explain arguments:\n%s", r.code, r.stdout)
	}
}
