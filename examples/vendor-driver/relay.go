// Package relay is a jumpwire driver for one channel of an Acme network relay
// board used as a power switch. It speaks the board's line protocol over TCP:
//
//	SET <ch> ON|OFF   -> OK
//	GET <ch>          -> ON | OFF
//	MEAS <ch>         -> V=5.01 I=0.42
//	(any command)     -> ERR <reason> when the board refuses it
//
// Its methods match the upstream Jumpstarter power interface (on, off, read,
// cycle), so Jumpstarter's PowerClient drives it unchanged. The binary
// jumpwire-driver-acme-relay serves it; package sim simulates a board.
package relay

import (
	"context"
	"fmt"
	"iter"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Type is the driver type this package provides: `type: acme-relay` in an
// exporter config.
var Type = sdk.Type{
	Name:        "acme-relay",
	Client:      "jumpstarter_driver_power.client.PowerClient",
	Description: "Acme network relay board power switch",
	New:         sdk.Factory(New),
}

// Channels is how many relays an Acme board has.
const Channels = 8

// maxCycle bounds the wait of cycle, so a typo cannot hold the device off for a day.
const maxCycle = 10 * time.Minute

// Config is the YAML `config` of an acme-relay instance.
type Config struct {
	Host     string        `json:"host" doc:"the board's host name or IP address"`
	Port     int           `json:"port" doc:"the board's TCP port (default 5025)"`
	Channel  int           `json:"channel" doc:"the relay switching the device, 1-8"`
	Timeout  time.Duration `json:"timeout" doc:"time limit for each exchange with the board, e.g. 500ms (default 2s)"`
	Invert   bool          `json:"invert" doc:"the device is wired to the relay's normally-closed contact: relay ON means power off"`
	Interval time.Duration `json:"interval" doc:"time between the readings read() streams (default 1s)"`
}

// SetDefaults fills in the defaults; the YAML config is decoded over them.
func (c *Config) SetDefaults() {
	c.Port, c.Timeout, c.Interval = 5025, 2*time.Second, time.Second
}

// Reading is one power measurement, as upstream power clients expect it.
type Reading struct {
	Voltage float64 `json:"voltage"`
	Current float64 `json:"current"`
}

// Relay is one channel of an Acme relay board.
type Relay struct {
	sdk.Base
	cfg   Config
	board *board
}

// Interface guards
var (
	_ sdk.Driver    = (*Relay)(nil)
	_ sdk.Resetter  = (*Relay)(nil)
	_ sdk.Closer    = (*Relay)(nil)
	_ sdk.Describer = (*Relay)(nil)
	_ sdk.Labeler   = (*Relay)(nil)
)

// New checks a decoded config and builds the driver. It does not contact the
// board: an exporter starts, and serves its other drivers, while a board is
// switched off; calls then fail with UNAVAILABLE naming the board.
func New(cfg Config) (*Relay, error) {
	if _, _, err := net.SplitHostPort(cfg.Host); err == nil {
		return nil, sdk.InvalidConfig("host", "%q includes a port; give the port as port:", cfg.Host)
	}
	switch {
	case cfg.Host == "":
		return nil, sdk.InvalidConfig("host", "must be set to the board's host name or IP address")
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, sdk.InvalidConfig("port", "must be 1-65535, got %d", cfg.Port)
	case cfg.Channel == 0:
		return nil, sdk.InvalidConfig("channel", "must be set to the relay switching the device, 1-%d", Channels)
	case cfg.Channel < 1 || cfg.Channel > Channels:
		return nil, sdk.InvalidConfig("channel", "must be 1-%d, got %d", Channels, cfg.Channel)
	case cfg.Timeout <= 0:
		return nil, sdk.InvalidConfig("timeout", "must be positive, got %v", cfg.Timeout)
	case cfg.Interval <= 0:
		return nil, sdk.InvalidConfig("interval", "must be positive, got %v", cfg.Interval)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	return &Relay{cfg: cfg, board: &board{addr: addr, timeout: cfg.Timeout}}, nil
}

// Exports lists the methods clients call.
func (r *Relay) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("on", r.On, "Power the device on"),
		sdk.Export("off", r.Off, "Power the device off"),
		sdk.Export("state", r.State, "Whether the device is powered"),
		sdk.Export("read", r.Read, "Stream voltage and current readings until stopped"),
		sdk.Export("cycle", r.Cycle, "Power off, wait (seconds, or a duration like 500ms), power on",
			sdk.Params("wait"), sdk.Default("wait", "1s")),
	}
}

// Description describes the instance to clients.
func (r *Relay) Description() string {
	d := fmt.Sprintf("Acme relay board %s, channel %d", r.board.addr, r.cfg.Channel)
	if r.cfg.Invert {
		d += " (normally closed)"
	}
	return d
}

// Labels tell clients which board and channel the instance switches.
func (r *Relay) Labels() map[string]string {
	return map[string]string{
		"acme.example.com/board":   r.board.addr,
		"acme.example.com/channel": strconv.Itoa(r.cfg.Channel),
	}
}

// Reset starts a session on a fresh connection. It leaves the power as it is
// and does not contact the board, so a board that is down fails calls, not
// the session.
func (r *Relay) Reset(context.Context) error {
	r.board.close()
	return nil
}

// Close releases the connection to the board.
func (r *Relay) Close(context.Context) error {
	r.board.close()
	return nil
}

// On powers the device on.
func (r *Relay) On(ctx context.Context) error {
	if err := r.set(ctx, true); err != nil {
		return err
	}
	r.Logger().Info("power on", "board", r.board.addr, "channel", r.cfg.Channel)
	return nil
}

// Off powers the device off.
func (r *Relay) Off(ctx context.Context) error {
	if err := r.set(ctx, false); err != nil {
		return err
	}
	r.Logger().Info("power off", "board", r.board.addr, "channel", r.cfg.Channel)
	return nil
}

// State reports whether the device is powered.
func (r *Relay) State(ctx context.Context) (bool, error) {
	cmd := fmt.Sprintf("GET %d", r.cfg.Channel)
	reply, err := r.board.exchange(ctx, cmd)
	if err != nil {
		return false, err
	}
	switch reply {
	case "ON":
		return !r.cfg.Invert, nil
	case "OFF":
		return r.cfg.Invert, nil
	}
	return false, r.board.unexpected(cmd, reply)
}

// Read streams a reading every cfg.Interval, the first at once, until the
// client stops reading.
func (r *Relay) Read(ctx context.Context) iter.Seq2[Reading, error] {
	return func(yield func(Reading, error) bool) {
		tick := time.NewTicker(r.cfg.Interval)
		defer tick.Stop()
		for {
			m, err := r.measure(ctx)
			if !yield(m, err) || err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
}

// Cycle powers the device off, waits, and powers it on again.
func (r *Relay) Cycle(ctx context.Context, wait time.Duration) error {
	if wait < 0 || wait > maxCycle {
		return sdk.Errorf(sdk.ErrInvalidArgument, "the wait must be between 0 and %v, got %v", maxCycle, wait)
	}
	if err := r.Off(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		// Left off: the caller gave up, and powering on behind its back
		// would surprise it more.
		return fmt.Errorf("cycle: interrupted with the device off: %w", context.Cause(ctx))
	case <-time.After(wait):
	}
	return r.On(ctx)
}

// set switches the relay so the device is powered (on) or not.
func (r *Relay) set(ctx context.Context, on bool) error {
	state := "OFF"
	if on != r.cfg.Invert {
		state = "ON"
	}
	cmd := fmt.Sprintf("SET %d %s", r.cfg.Channel, state)
	reply, err := r.board.exchange(ctx, cmd)
	if err != nil {
		return err
	}
	if reply != "OK" {
		return r.board.unexpected(cmd, reply)
	}
	return nil
}

// measure asks the board for the channel's voltage and current.
func (r *Relay) measure(ctx context.Context) (Reading, error) {
	cmd := fmt.Sprintf("MEAS %d", r.cfg.Channel)
	reply, err := r.board.exchange(ctx, cmd)
	if err != nil {
		return Reading{}, err
	}
	m, ok := parseMeasurement(reply)
	if !ok {
		return Reading{}, r.board.unexpected(cmd, reply)
	}
	return m, nil
}

// parseMeasurement parses "V=5.01 I=0.42".
func parseMeasurement(s string) (Reading, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Reading{}, false
	}
	v, okV := strings.CutPrefix(f[0], "V=")
	i, okI := strings.CutPrefix(f[1], "I=")
	volts, errV := strconv.ParseFloat(v, 64)
	amps, errI := strconv.ParseFloat(i, 64)
	if !okV || !okI || errV != nil || errI != nil {
		return Reading{}, false
	}
	return Reading{Voltage: volts, Current: amps}, true
}
