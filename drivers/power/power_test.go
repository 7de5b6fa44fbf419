package power_test

import (
	"testing"

	"github.com/jumpwire-dev/jumpwire/drivers/power"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestOnOffRead(t *testing.T) {
	d := sdktest.Start(t, power.Type, map[string]any{"voltage": 12, "current": 0.5, "interval": "1ms"})
	ctx := t.Context()
	if v, err := d.Call(ctx, "state"); err != nil || v != false {
		t.Fatalf("state = %v, %v; want false", v, err)
	}
	if v, err := d.Call(ctx, "on"); err != nil || v != nil {
		t.Fatalf("on = %v, %v; want nil, nil", v, err)
	}
	var got []any
	for r, err := range d.StreamingCall(ctx, "read") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 3 {
		t.Fatalf("read gave %d readings, want 3: %v", len(got), got)
	}
	want := map[string]any{"voltage": 12.0, "current": 0.5}
	for _, r := range got {
		m := r.(map[string]any)
		if m["voltage"] != want["voltage"] || m["current"] != want["current"] {
			t.Fatalf("reading %v, want %v", r, want)
		}
	}
	if err := d.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Call(ctx, "state"); v != false {
		t.Fatalf("after reset state = %v, want the configured false", v)
	}
}

func TestBadCalls(t *testing.T) {
	d := sdktest.Start(t, power.Type, nil)
	ctx := t.Context()
	tests := []struct {
		method string
		args   []any
		code   codes.Code
		msg    string
	}{
		{"on", []any{true}, codes.InvalidArgument, "on takes 0 arguments, got 1 (call it as on())"},
		{"reboot", nil, codes.NotFound, `power has no method "reboot"`},
		{"read", nil, codes.InvalidArgument, "read is a streaming method; call it as one"},
	}
	for _, tt := range tests {
		_, err := d.Call(ctx, tt.method, tt.args...)
		s := status.Convert(err)
		if s.Code() != tt.code || s.Message() != tt.msg {
			t.Errorf("%s%v: got %v %q, want %v %q", tt.method, tt.args, s.Code(), s.Message(), tt.code, tt.msg)
		}
	}
}

func TestConfigRejected(t *testing.T) {
	tests := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"voltage": -1}, "voltage: must not be negative, got -1"},
		{map[string]any{"on": "yes"}, `on: expected boolean, got string "yes"`},
		{map[string]any{"volts": 5}, `volts: unknown key; valid keys: current, interval, on, readings, voltage`},
		{map[string]any{"interval": "soon"}, `interval: `},
	}
	for _, tt := range tests {
		_, err := sdktest.Configure(t, power.Type, tt.cfg)
		if err == nil || !startsWith(err.Error(), tt.want) {
			t.Errorf("config %v: got %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func startsWith(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }
