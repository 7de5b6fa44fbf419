package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jumpwire-dev/jumpwire/drivers/network"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// defaultDial is how long connecting to the board may take.
const defaultDial = 5 * time.Second

// Forwarded is a TCP port of the guest, forwarded by the power driver.
var Forwarded = sdk.Type{
	Name:        "qemu-forward",
	Client:      "jumpstarter_driver_network.client.NetworkClient",
	Description: "A TCP port of the QEMU virtual board",
	New:         sdk.Factory(NewForward),
}

// ForwardConfig configures a forwarded port.
type ForwardConfig struct {
	StateDir string `json:"state_dir" doc:"the board's state directory, shared by its children (required)"`
	Name     string `json:"name" doc:"the forward's name in the power driver's forward config (required)"`
}

// ForwardDriver connects streams to a forwarded port of the board.
type ForwardDriver struct {
	sdk.Base
	cfg ForwardConfig
}

// Interface guards
var _ sdk.Driver = (*ForwardDriver)(nil)

// NewForward checks the config.
func NewForward(cfg ForwardConfig) (*ForwardDriver, error) {
	if err := checkStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		return nil, sdk.InvalidConfig("name", "required: the name of a forward in the power driver's config")
	}
	return &ForwardDriver{cfg: cfg}, nil
}

// Exports lists the methods upstream's NetworkClient calls.
func (f *ForwardDriver) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.ExportStream("connect", f.Connect, "Connect to the board's port"),
		sdk.Export("address", f.Address, "The port's address on the exporter's host while the board is on"),
	}
}

// port reads the host port the power driver chose.
func (f *ForwardDriver) port() (int, error) {
	b, err := os.ReadFile(forwardPortFile(f.cfg.StateDir, f.cfg.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: qemu: the board is powered off (or has no forward %q)", sdk.ErrUnavailable, f.cfg.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: qemu: %w", sdk.ErrUnavailable, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Address returns tcp://127.0.0.1:PORT.
func (f *ForwardDriver) Address(context.Context) (string, error) {
	p, err := f.port()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", p), nil
}

// Connect relays the stream to the forwarded port.
func (f *ForwardDriver) Connect(ctx context.Context, conn sdk.Conn) error {
	p, err := f.port()
	if err != nil {
		return err
	}
	n, err := network.NewTCP(network.HostConfig{Host: "127.0.0.1", Port: p, ConnectTimeout: defaultDial, EnableAddress: true})
	if err != nil {
		return err
	}
	return n.Connect(ctx, conn)
}
