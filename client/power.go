package client

import (
	"context"
	"fmt"
	"iter"
)

// Power drives an instance of the upstream power interface
// (jumpstarter_driver_power.client.PowerClient): on(), off() and the streaming read().
type Power struct {
	c *Client
	d *Driver
}

// NewPower returns the power helper for driver d of client c. It does not check the driver's
// interface; calls to a driver without these methods fail with codes.NotFound.
func NewPower(c *Client, d *Driver) *Power { return &Power{c: c, d: d} }

// PowerReading is one measurement from [Power.Read].
type PowerReading struct {
	// Voltage in volts.
	Voltage float64 `json:"voltage"`
	// Current in amperes.
	Current float64 `json:"current"`
}

// On powers the device on.
func (p *Power) On(ctx context.Context) error {
	_, err := p.c.Call(ctx, p.d.UUID, "on")
	return err
}

// Off powers the device off.
func (p *Power) Off(ctx context.Context) error {
	_, err := p.c.Call(ctx, p.d.UUID, "off")
	return err
}

// Read streams measurements until the driver stops or the loop breaks (which cancels the call).
func (p *Power) Read(ctx context.Context) iter.Seq2[PowerReading, error] {
	return func(yield func(PowerReading, error) bool) {
		for v, err := range p.c.StreamingCall(ctx, p.d.UUID, "read") {
			if err != nil {
				yield(PowerReading{}, err)
				return
			}
			r, err := powerReading(v)
			if err != nil {
				yield(PowerReading{}, fmt.Errorf("%s: %w", p.c.opName(p.d.UUID, "read"), err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// powerReading decodes {"voltage": V, "current": I}.
func powerReading(v any) (PowerReading, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return PowerReading{}, fmt.Errorf("reading is %T, not an object with voltage and current", v)
	}
	var r PowerReading
	var err error
	if r.Voltage, err = number(m, "voltage"); err != nil {
		return PowerReading{}, err
	}
	if r.Current, err = number(m, "current"); err != nil {
		return PowerReading{}, err
	}
	return r, nil
}

func number(m map[string]any, key string) (float64, error) {
	f, ok := m[key].(float64)
	if !ok {
		return 0, fmt.Errorf("reading has no number %q", key)
	}
	return f, nil
}
