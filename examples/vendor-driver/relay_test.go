package relay_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	relay "example.com/acme/relay-driver"
	"example.com/acme/relay-driver/sim"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startBoard starts a simulated board, stopped when the test ends.
func startBoard(t *testing.T) *sim.Board {
	t.Helper()
	b, err := sim.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// config is an instance config for channel ch of board b, with extra keys.
func config(b *sim.Board, ch int, extra ...any) map[string]any {
	cfg := map[string]any{"host": "127.0.0.1", "port": b.Port(), "channel": ch, "interval": "1ms"}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i].(string)] = extra[i+1]
	}
	return cfg
}

func TestOnOffState(t *testing.T) {
	tests := []struct {
		name           string
		invert         bool
		wantOn, wantOf string
	}{
		{"normally open", false, "SET 3 ON", "SET 3 OFF"},
		{"normally closed", true, "SET 3 OFF", "SET 3 ON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBoard(t)
			d := sdktest.Start(t, relay.Type, config(b, 3, "invert", tt.invert))
			ctx := t.Context()
			if _, err := d.Call(ctx, "on"); err != nil {
				t.Fatalf("on: %v", err)
			}
			if v, err := d.Call(ctx, "state"); err != nil || v != true {
				t.Fatalf("state after on = %v, %v; want true", v, err)
			}
			if _, err := d.Call(ctx, "off"); err != nil {
				t.Fatalf("off: %v", err)
			}
			if v, err := d.Call(ctx, "state"); err != nil || v != false {
				t.Fatalf("state after off = %v, %v; want false", v, err)
			}
			want := []string{tt.wantOn, "GET 3", tt.wantOf, "GET 3"}
			if got := b.Commands(); !slices.Equal(got, want) {
				t.Errorf("the board saw %q, want %q", got, want)
			}
		})
	}
}

func TestRead(t *testing.T) {
	b := startBoard(t)
	b.SetLoad(12.5, 1.25)
	d := sdktest.Start(t, relay.Type, config(b, 1))
	ctx := t.Context()

	read := func(n int) []any {
		t.Helper()
		var got []any
		for r, err := range d.StreamingCall(ctx, "read") {
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if got = append(got, r); len(got) == n {
				break // the client stops reading: the stream ends
			}
		}
		return got
	}
	off := map[string]any{"voltage": 0.0, "current": 0.0}
	for _, r := range read(2) {
		if !mapsEqual(r, off) {
			t.Errorf("reading while off: %v, want %v", r, off)
		}
	}
	if _, err := d.Call(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	on := map[string]any{"voltage": 12.5, "current": 1.25}
	for _, r := range read(3) {
		if !mapsEqual(r, on) {
			t.Errorf("reading while on: %v, want %v", r, on)
		}
	}
}

func mapsEqual(r any, want map[string]any) bool {
	m, ok := r.(map[string]any)
	return ok && len(m) == len(want) && m["voltage"] == want["voltage"] && m["current"] == want["current"]
}

func TestCycle(t *testing.T) {
	b := startBoard(t)
	d := sdktest.Start(t, relay.Type, config(b, 2))
	ctx := t.Context()
	for _, wait := range []any{0.01, "10ms"} {
		if _, err := d.Call(ctx, "cycle", wait); err != nil {
			t.Fatalf("cycle(%v): %v", wait, err)
		}
	}
	want := []string{"SET 2 OFF", "SET 2 ON", "SET 2 OFF", "SET 2 ON"}
	if got := b.Commands(); !slices.Equal(got, want) {
		t.Errorf("the board saw %q, want %q", got, want)
	}
	if !b.Relay(2) {
		t.Error("relay 2 is off after cycle")
	}

	_, err := d.Call(ctx, "cycle", -1)
	if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "between 0 and 10m0s") {
		t.Errorf("cycle(-1): %v %q, want InvalidArgument naming the range", s.Code(), s.Message())
	}
}

func TestCycleInterrupted(t *testing.T) {
	b := startBoard(t)
	d := sdktest.Start(t, relay.Type, config(b, 2))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := d.Call(ctx, "cycle", 60)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("cycle(60) with a 50ms deadline: %v, want DeadlineExceeded", err)
	}
	if b.Relay(2) {
		t.Error("an interrupted cycle powered the device on")
	}
}

func TestBoardErrors(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close() // nothing listens there now
		d := sdktest.Start(t, relay.Type, map[string]any{"host": "127.0.0.1", "port": port, "channel": 1})
		_, err = d.Call(t.Context(), "on")
		s := status.Convert(err)
		if s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "acme board at "+addr+" is unavailable") {
			t.Errorf("on: %v %q, want Unavailable naming %s", s.Code(), s.Message(), addr)
		}
	})
	t.Run("ERR answer", func(t *testing.T) {
		b := startBoard(t)
		d := sdktest.Start(t, relay.Type, config(b, 1))
		b.Fail("relay welded")
		_, err := d.Call(t.Context(), "on")
		s := status.Convert(err)
		want := "acme board at " + b.Addr() + ": SET 1 ON: ERR relay welded"
		if s.Code() != codes.Internal || s.Message() != want {
			t.Errorf("on: %v %q, want Internal %q", s.Code(), s.Message(), want)
		}
		for _, err := range d.StreamingCall(t.Context(), "read") {
			if status.Code(err) != codes.Internal {
				t.Errorf("read: %v, want Internal", err)
			}
		}
	})
	t.Run("board reboots", func(t *testing.T) {
		b := startBoard(t)
		d := sdktest.Start(t, relay.Type, config(b, 1))
		if _, err := d.Call(t.Context(), "on"); err != nil {
			t.Fatal(err)
		}
		b.Disconnect()
		if _, err := d.Call(t.Context(), "off"); err != nil {
			t.Fatalf("off after the board dropped the connection: %v, want a reconnect", err)
		}
		if b.Relay(1) {
			t.Error("relay 1 is still on")
		}
	})
}

func TestConfigRejected(t *testing.T) {
	tests := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"channel": 1}, "host: must be set to the board's host name or IP address"},
		{map[string]any{"host": "relay1"}, "channel: must be set to the relay switching the device, 1-8"},
		{map[string]any{"host": "relay1", "channel": 9}, "channel: must be 1-8, got 9"},
		{map[string]any{"host": "relay1:5025", "channel": 1}, `host: "relay1:5025" includes a port; give the port as port:`},
		{map[string]any{"host": "relay1", "channel": 1, "port": 70000}, "port: must be 1-65535, got 70000"},
		{map[string]any{"host": "relay1", "channel": 1, "timeout": "0s"}, "timeout: must be positive, got 0s"},
		{map[string]any{"host": "relay1", "channel": 1, "timeout": "soon"}, "timeout: expected duration"},
		{map[string]any{"host": "relay1", "channel": "one"}, `channel: expected integer, got string "one"`},
		{map[string]any{"host": "relay1", "channel": 1, "inverted": true}, "inverted: unknown key; valid keys: channel, host, interval, invert, port, timeout"},
	}
	for _, tt := range tests {
		_, err := sdktest.Configure(t, relay.Type, tt.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("config %v: got %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestDescription(t *testing.T) {
	d := sdktest.Start(t, relay.Type, map[string]any{"host": "10.0.0.5", "channel": 4, "invert": true})
	if got, want := d.Configured.Description, "Acme relay board 10.0.0.5:5025, channel 4 (normally closed)"; got != want {
		t.Errorf("description %q, want %q", got, want)
	}
	if got := d.Configured.Labels["acme.example.com/channel"]; got != "4" {
		t.Errorf("channel label %q, want 4", got)
	}
}
