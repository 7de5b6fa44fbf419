package sdk_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/internal/harness"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
)

// relayDriver names its parameters and defaults some of them.
type relayDriver struct{ sdk.Base }

func (r *relayDriver) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("on", r.On, "Switch a channel", sdk.Params("channel", "state"), sdk.Default("state", true)),
		sdk.Export("cycle", r.Cycle, "Off, wait, on", sdk.Params("channel", "wait"), sdk.Default("wait", "500ms")),
		sdk.Export("label", r.Label, "Join words", sdk.Params("sep", "words")),
	}
}

func (r *relayDriver) On(_ context.Context, channel int, state bool) (string, error) {
	return fmt.Sprintf("%d=%t", channel, state), nil
}

func (r *relayDriver) Cycle(_ context.Context, channel int, wait time.Duration) (string, error) {
	return fmt.Sprintf("%d after %s", channel, wait), nil
}

func (r *relayDriver) Label(_ context.Context, sep string, words ...string) (string, error) {
	return fmt.Sprint(len(words), sep), nil
}

func startRelay(t *testing.T) *sdktest.Instance {
	return sdktest.Start(t, driverType("relay", &relayDriver{}), nil)
}

func TestNamedParamsDescribed(t *testing.T) {
	t.Parallel()
	i := startRelay(t)
	methods := map[string]*pluginv1.Method{}
	for _, m := range i.Configured.Methods {
		methods[m.Name] = m
	}
	type param struct{ name, typ, def string }
	tests := []struct {
		method string
		want   []param
	}{
		{"on", []param{{"channel", "integer", ""}, {"state", "boolean", "true"}}},
		{"cycle", []param{{"channel", "integer", ""}, {"wait", "duration", `"500ms"`}}},
		{"label", []param{{"sep", "string", ""}, {"words", "string", ""}}},
	}
	for _, tt := range tests {
		m := methods[tt.method]
		if m == nil {
			t.Fatalf("%s is not described", tt.method)
		}
		var got []param
		for _, p := range m.ParamInfo {
			def := ""
			if p.Default != nil {
				b, _ := p.Default.MarshalJSON()
				def = string(b)
			}
			got = append(got, param{p.Name, p.Type, def})
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s params: got %v, want %v", tt.method, got, tt.want)
		}
	}
}

func TestNamedParamsCalls(t *testing.T) {
	t.Parallel()
	i := startRelay(t)
	tests := []struct {
		method string
		args   []any
		want   string
	}{
		{"on", []any{2, false}, "2=false"},
		{"on", []any{3}, "3=true"},
		{"cycle", []any{1}, "1 after 500ms"},
		{"cycle", []any{1, 2}, "1 after 2s"},
		{"label", []any{"-"}, "0-"},
	}
	for _, tt := range tests {
		if v, err := i.Call(t.Context(), tt.method, tt.args...); err != nil || v != tt.want {
			t.Errorf("%s%v = %v, %v; want %q", tt.method, tt.args, v, err, tt.want)
		}
	}
	errs := []struct {
		method string
		args   []any
		msg    string
	}{
		{"on", nil, "on takes 1 to 2 arguments, got 0 (call it as on(channel integer, state boolean = true))"},
		{"on", []any{1, true, 3}, "on takes 1 to 2 arguments, got 3 (call it as on(channel integer, state boolean = true))"},
		{"on", []any{"one"}, `on: channel: expected integer, got string "one"`},
		{"label", nil, "label takes at least 1 argument, got 0 (call it as label(sep string, words string...))"},
		{"label", []any{"-", "a", 2}, `label: words[1]: expected string, got 2`},
	}
	for _, tt := range errs {
		_, err := i.Call(t.Context(), tt.method, tt.args...)
		wantStatus(t, fmt.Sprintf("%s%v", tt.method, tt.args), err, codes.InvalidArgument, tt.msg)
	}
}

// optionsDriver exports one method with the options of the test case that
// runs (the SDK checks Exports on a zero instance, so they cannot be a field).
type optionsDriver struct{ sdk.Base }

var caseOptions []sdk.ExportOption // set by TestExportOptionErrors, one case at a time

func (d *optionsDriver) Exports() []sdk.Method {
	return []sdk.Method{sdk.Export("on", func(context.Context, int, bool, ...string) error { return nil }, "", caseOptions...)}
}

func TestExportOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []sdk.ExportOption
		want string
	}{
		{"too few names", []sdk.ExportOption{sdk.Params("channel")},
			"sdk.Params names 1 parameters, the function has 3 after the context"},
		{"bad name", []sdk.ExportOption{sdk.Params("channel", "on off", "rest")},
			`parameter name "on off": use a letter or _ followed by letters, digits and _`},
		{"duplicate", []sdk.ExportOption{sdk.Params("a", "a", "rest")}, `parameter name "a" appears twice`},
		{"unknown default", []sdk.ExportOption{sdk.Params("a", "b", "rest"), sdk.Default("c", 1)},
			`sdk.Default("c"): no such parameter (parameters: a, b, rest)`},
		{"default without names", []sdk.ExportOption{sdk.Default("a", 1)},
			"sdk.Default needs the parameters named with sdk.Params"},
		{"wrong type", []sdk.ExportOption{sdk.Params("a", "b", "rest"), sdk.Default("b", "yes")},
			`sdk.Default("b"): b: expected boolean, got string "yes"`},
		{"not trailing", []sdk.ExportOption{sdk.Params("a", "b", "rest"), sdk.Default("a", 1)},
			`parameter "a" has a default but "b" after it has none: only trailing parameters may have defaults`},
		{"variadic default", []sdk.ExportOption{sdk.Params("a", "b", "rest"), sdk.Default("rest", "x")},
			`sdk.Default("rest"): a variadic parameter takes no default`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caseOptions = tt.opts
			typ := sdk.Type{Name: "bad", New: sdk.Factory(func(struct{}) (*optionsDriver, error) {
				return &optionsDriver{}, nil
			})}
			_, err := harness.NewServer(sdk.Plugin{Drivers: []sdk.Type{typ}}, nil)
			want := `driver type "bad": sdk: Export("on"): ` + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("NewServer: got %v, want %q", err, want)
			}
		})
	}
}
