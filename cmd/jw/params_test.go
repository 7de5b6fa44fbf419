package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

// relaySignature is what a driver exporting on with sdk.Params("channel", "state", "note") and
// defaults for state and note reports.
const relaySignature = `{"params":[{"name":"channel","type":"integer"},{"name":"state","type":"boolean","default":true},` +
	`{"name":"note","type":"string","default":"-"}],"result":"null"}`

// paramsLab is the lab plus a driver "relay" whose methods name their parameters.
func paramsLab() *fakeexporter.Exporter {
	fake := fakeexporter.Lab()
	fake.Root.Children = append(fake.Root.Children, &fakeexporter.Driver{
		Name: "relay", Type: "relay",
		Methods: []fakeexporter.Method{
			{Name: "on", Description: "Switch a channel", Signature: relaySignature,
				Call: func(_ context.Context, args []any) (any, error) { return args, nil }},
			{Name: "label", Description: "Join words",
				Signature: `{"params":[{"name":"sep","type":"string"},{"name":"words","type":"string"}],"variadic":true,"result":"string"}`,
				Call:      func(_ context.Context, args []any) (any, error) { return args, nil }},
		},
	})
	return fake
}

func TestNamedArguments(t *testing.T) {
	fake := paramsLab()
	sock := fake.Start(t)
	tests := []struct {
		args []string
		want []any // what the driver receives
	}{
		{[]string{"relay", "on", "2", "false"}, []any{2.0, false}},
		{[]string{"relay", "on", "channel=2", "state=false"}, []any{2.0, false}},
		{[]string{"relay", "on", "state=false", "channel=3"}, []any{3.0, false}},
		{[]string{"relay", "on", "1", "note=x=y"}, []any{1.0, true, "x=y"}}, // state takes its default
		{[]string{"relay", "on", "channel=4"}, []any{4.0}},                  // the driver defaults the rest
		{[]string{"call", "relay", "on", "5", `"a=b"`}, []any{5.0, "a=b"}},  // JSON: not a name
		{[]string{"relay", "label", "sep=-"}, []any{"-"}},
		{[]string{"relay", "label", "-", "a=b", "c"}, nil}, // error below: "a" is no parameter
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			before := len(fake.Calls())
			r := jw(t, sock, tt.args...)
			if tt.want == nil {
				if r.code != 1 || !strings.Contains(r.stderr, `unknown parameter "a"`) {
					t.Errorf("code %d, stderr %q", r.code, r.stderr)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.stderr)
			}
			calls := fake.Calls()
			if len(calls) != before+1 || !reflect.DeepEqual(calls[len(calls)-1].Args, tt.want) {
				t.Errorf("calls %+v, want one with %v", calls[before:], tt.want)
			}
		})
	}
}

func TestNamedArgumentErrors(t *testing.T) {
	sock := paramsLab().Start(t)
	sig := "on(channel integer, state boolean = true, note string = \"-\")"
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"relay", "on", "chanel=2"},
			`jw: relay.on: unknown parameter "chanel"; it takes ` + sig + ` (a string argument containing "=" is passed as JSON: '"chanel=2"')`},
		{[]string{"relay", "on", "state=false"}, "jw: relay.on: missing channel (call it as " + sig + ")"},
		{[]string{"relay", "on", "2", "channel=3"}, `jw: relay.on: channel is given twice (by position as "2", and by name)`},
		{[]string{"relay", "on", "channel=2", "channel=3"}, "jw: relay.on: channel is given twice"},
		{[]string{"relay", "on", "channel=2", "true"}, `jw: relay.on: argument "true" follows named arguments: put positional arguments first`},
		{[]string{"relay", "label", "words=a"}, "jw: relay.label: words takes any number of values: pass them by position, after the others"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			jw(t, sock, tt.args...).check(t, "", tt.stderr+"\n", 1)
		})
	}
}

func TestTreeShowsParameters(t *testing.T) {
	sock := paramsLab().Start(t)
	r := jw(t, sock, "tree")
	want := "└── relay (relay)\n" +
		"      label(sep string, words string...)                            Join words\n" +
		"      on(channel integer, state boolean = true, note string = \"-\")  Switch a channel\n"
	if r.code != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Errorf("code %d, tree:\n%s\nwant it to end in:\n%s", r.code, r.stdout, want)
	}

	r = jw(t, sock, "tree", "-o", "json")
	var doc struct {
		Root struct {
			Children []struct {
				Name    string
				Methods []struct {
					Name     string
					Params   []map[string]any
					Variadic bool
					Result   string
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	relay := doc.Root.Children[len(doc.Root.Children)-1]
	on := relay.Methods[1]
	wantParams := []map[string]any{
		{"name": "channel", "type": "integer"},
		{"name": "state", "type": "boolean", "default": true},
		{"name": "note", "type": "string", "default": "-"},
	}
	if on.Name != "on" || !reflect.DeepEqual(on.Params, wantParams) || on.Result != "null" {
		t.Errorf("on in JSON: %+v", on)
	}
	if off := doc.Root.Children[0].Methods[0]; off.Params == nil || len(off.Params) != 0 {
		t.Errorf("power.off params %#v, want []", off.Params)
	}
}
