package client_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

func TestPower(t *testing.T) {
	fake := fakeexporter.Lab()
	c := dial(t, fake)
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d, err := tree.Lookup("dut.power")
	if err != nil {
		t.Fatal(err)
	}
	p := client.NewPower(c, d)
	if err := p.On(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Off(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []client.PowerReading
	for r, err := range p.Read(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if want := []client.PowerReading{{5, 2}, {5, 2.5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("readings %v, want %v", got, want)
	}
	var calls []string
	for _, c := range fake.Calls() {
		calls = append(calls, c.Path+"."+c.Method)
	}
	if want := []string{"dut.power.on", "dut.power.off", "dut.power.read"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
}

func TestPowerBadReading(t *testing.T) {
	tests := []struct {
		name    string
		reading any
		want    string
	}{
		{"not an object", "5V", "power.read: reading is string, not an object with voltage and current"},
		{"no current", map[string]any{"voltage": 5.0}, `power.read: reading has no number "current"`},
		{"string voltage", map[string]any{"voltage": "5", "current": 1.0}, `power.read: reading has no number "voltage"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fakeexporter.Lab()
			fake.Root.Children[0].Methods[2].Stream = func(_ context.Context, _ []any, send func(any) error) error {
				return send(tt.reading)
			}
			c := dial(t, fake)
			tree, err := c.Tree(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			d, _ := tree.Lookup("power")
			n := 0
			for _, err := range client.NewPower(c, d).Read(t.Context()) {
				n++
				if err == nil || err.Error() != tt.want {
					t.Errorf("error %v, want %q", err, tt.want)
				}
			}
			if n != 1 {
				t.Errorf("%d values yielded, want 1 error", n)
			}
		})
	}
}
