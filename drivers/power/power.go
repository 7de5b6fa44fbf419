// Package power is a mock power switch matching the upstream Jumpstarter
// power interface (on, off, read), for demos and tests. The binary
// jumpwire-driver-power serves it.
package power

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Type is the driver type this package provides.
var Type = sdk.Type{
	Name:        "power",
	Aliases:     []string{"jumpstarter_driver_power.driver.MockPower"},
	Client:      "jumpstarter_driver_power.client.PowerClient",
	Description: "Mock power switch",
	New:         sdk.Factory(New),
}

// Config configures a mock power switch.
type Config struct {
	On       bool          `json:"on" doc:"initial state: true starts powered"`
	Voltage  float64       `json:"voltage" doc:"volts reported while on (default 5)"`
	Current  float64       `json:"current" doc:"amperes reported while on (default 2)"`
	Readings int           `json:"readings" doc:"readings each read() streams (default 3)"`
	Interval time.Duration `json:"interval" doc:"time between readings, e.g. 100ms (default 100ms)"`
}

// SetDefaults fills in the defaults before the config is decoded.
func (c *Config) SetDefaults() {
	c.Voltage, c.Current, c.Readings, c.Interval = 5, 2, 3, 100*time.Millisecond
}

// Reading is one power measurement, as upstream clients expect it.
type Reading struct {
	Voltage float64 `json:"voltage"`
	Current float64 `json:"current"`
}

// Power is a mock power switch.
type Power struct {
	sdk.Base
	cfg Config

	mu sync.Mutex
	on bool
}

// Interface guards
var (
	_ sdk.Driver   = (*Power)(nil)
	_ sdk.Resetter = (*Power)(nil)
)

// New builds a power switch from its config.
func New(cfg Config) (*Power, error) {
	switch {
	case cfg.Voltage < 0:
		return nil, sdk.InvalidConfig("voltage", "must not be negative, got %v", cfg.Voltage)
	case cfg.Readings < 0:
		return nil, sdk.InvalidConfig("readings", "must not be negative, got %d", cfg.Readings)
	case cfg.Interval < 0:
		return nil, sdk.InvalidConfig("interval", "must not be negative, got %v", cfg.Interval)
	}
	return &Power{cfg: cfg, on: cfg.On}, nil
}

// Exports lists the methods clients call.
func (p *Power) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("on", p.On, "Power on the device"),
		sdk.Export("off", p.Off, "Power off the device"),
		sdk.Export("read", p.Read, "Stream power readings"),
		sdk.Export("state", p.State, "Whether the device is powered"),
	}
}

// Reset returns the switch to its configured initial state.
func (p *Power) Reset(context.Context) error {
	p.set(p.cfg.On)
	return nil
}

// On powers the device on.
func (p *Power) On(context.Context) error {
	p.set(true)
	p.Logger().Info("power on")
	return nil
}

// Off powers the device off.
func (p *Power) Off(context.Context) error {
	p.set(false)
	p.Logger().Info("power off")
	return nil
}

// State reports whether the device is powered.
func (p *Power) State(context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on, nil
}

// Read streams cfg.Readings measurements, cfg.Interval apart.
func (p *Power) Read(ctx context.Context) iter.Seq2[Reading, error] {
	return func(yield func(Reading, error) bool) {
		for i := range p.cfg.Readings {
			if i > 0 {
				select {
				case <-ctx.Done():
					yield(Reading{}, ctx.Err())
					return
				case <-time.After(p.cfg.Interval):
				}
			}
			if !yield(p.reading(), nil) {
				return
			}
		}
	}
}

func (p *Power) set(on bool) {
	p.mu.Lock()
	p.on = on
	p.mu.Unlock()
}

func (p *Power) reading() Reading {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return Reading{}
	}
	return Reading{Voltage: p.cfg.Voltage, Current: p.cfg.Current}
}
