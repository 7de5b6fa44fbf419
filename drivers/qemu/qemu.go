// Package qemu is a virtual board: a QEMU machine presented as upstream
// Jumpstarter's Qemu driver presents it, a composite whose children are its
// power, its serial console, its disk (a storage mux and flasher) and the
// ports it forwards. The binary jumpwire-driver-qemu serves the types.
//
// A jumpwire driver cannot declare children, so the exporter file nests
// them, and the instances of one board share a state directory (state_dir):
//
//	board:
//	  type: qemu                      # get_hostname, get_username, get_password
//	  config: {state_dir: /var/lib/boards/b1}
//	  children:
//	    power:   {type: qemu-power, config: {state_dir: /var/lib/boards/b1, kernel: ..., forward: {web: {guest_port: 80}}}}
//	    console: {type: qemu-console, config: {state_dir: /var/lib/boards/b1}}
//	    flasher: {type: storage-mux-flasher, config: {path: /var/lib/boards/b1/disk.img}}
//	    web:     {type: qemu-forward, config: {state_dir: /var/lib/boards/b1, name: web}}
//
// The power driver runs the qemu process: on() starts it under a keeper (the
// plugin's binary started again, in a session of its own; see keeper.go),
// off() stops it (SIGTERM, then SIGKILL to the keeper's group), and a qemu
// that exits by itself is a board that is off. The keeper serves the
// board's serial console on state_dir/console.sock (every console stream
// gets what the board printed lately, then what it prints) and lives as long
// as the exporter, not as long as the plugin: a power plugin that crashes or
// is swapped leaves the board running, and its successor adopts it from
// state_dir/run.json. The power driver writes the host port of each forward
// to state_dir/forward-NAME.port. The disk is the storage driver's image
// file: power refuses to boot while it is switched to the
// host or was not fully written.
package qemu

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Board is the board itself: the root of its tree.
var Board = sdk.Type{
	Name:        "qemu",
	Aliases:     []string{"jumpstarter_driver_qemu.driver.Qemu"},
	Client:      "jumpstarter_driver_qemu.client.QemuClient",
	Description: "QEMU virtual board",
	New:         sdk.Factory(NewBoard),
}

// BoardConfig configures the board's root: what a client needs to log in.
type BoardConfig struct {
	StateDir string `json:"state_dir" doc:"the board's state directory, shared by its children (required)"`
	Hostname string `json:"hostname" doc:"the guest's host name (default demo)"`
	Username string `json:"username" doc:"the user to log in as (default root)"`
	Password string `json:"password" doc:"the user's password (default empty)"`
}

// SetDefaults fills in the defaults before the config is decoded.
func (c *BoardConfig) SetDefaults() { c.Hostname, c.Username = "demo", "root" }

// Root is the board's root driver.
type Root struct {
	sdk.Base
	cfg BoardConfig
}

// Interface guards
var _ sdk.Driver = (*Root)(nil)

// NewBoard builds the board's root from its config.
func NewBoard(cfg BoardConfig) (*Root, error) {
	if err := checkStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	return &Root{cfg: cfg}, nil
}

// Exports lists the methods upstream's QemuClient calls.
func (r *Root) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("get_hostname", r.Hostname, "The guest's host name"),
		sdk.Export("get_username", r.Username, "The user to log in as"),
		sdk.Export("get_password", r.Password, "The user's password"),
		sdk.Export("set_memory_size", r.SetMemorySize, "Set the memory of the next boots, e.g. 1G"),
		sdk.Export("set_disk_size", r.SetDiskSize, "Grow the disk to this size (e.g. 2G) before the next boot"),
	}
}

// Description names the board's state directory.
func (r *Root) Description() string { return "QEMU virtual board in " + r.cfg.StateDir }

// Hostname returns the guest's host name.
func (r *Root) Hostname(context.Context) (string, error) { return r.cfg.Hostname, nil }

// Username returns the user to log in as.
func (r *Root) Username(context.Context) (string, error) { return r.cfg.Username, nil }

// Password returns the user's password.
func (r *Root) Password(context.Context) (string, error) { return r.cfg.Password, nil }

// checkStateDir checks the state_dir key every type of the board has.
func checkStateDir(dir string) error {
	switch {
	case dir == "":
		return sdk.InvalidConfig("state_dir", "required: the board's state directory, the same for all its children")
	case !filepath.IsAbs(dir):
		return sdk.InvalidConfig("state_dir", "must be an absolute path, got %q", dir)
	}
	return nil
}

// Paths in the state directory.
func consoleSocket(dir string) string { return filepath.Join(dir, "console.sock") }
func forwardPortFile(dir, name string) string {
	return filepath.Join(dir, fmt.Sprintf("forward-%s.port", name))
}
