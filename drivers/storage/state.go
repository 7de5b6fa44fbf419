package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Mux positions.
const (
	Host = "host" // the exporter may read and write the device
	DUT  = "dut"  // the device belongs to the board
	Off  = "off"  // the device is connected to neither
)

// State is what the driver remembers about its device across processes and
// restarts, in a small JSON file beside it (see [StatePath]). Another driver
// of the same board (a virtual board's power) reads it to refuse to boot
// from a device that is switched away or half written.
type State struct {
	// Mux is where the device is switched: host, dut or off.
	Mux string `json:"mux"`
	// Complete is false from the start of a write until its bytes are on the
	// device (after fsync): a write that failed, or whose client went away,
	// leaves it false.
	Complete bool `json:"complete"`
	// Written counts the bytes of the last write that reached the device.
	Written int64 `json:"written"`
	// SHA256 is the hex sha256 of what the last complete write wrote.
	SHA256 string `json:"sha256,omitempty"`
	// Error says why the last write did not complete.
	Error string `json:"error,omitempty"`
	// Updated is when the state last changed.
	Updated time.Time `json:"updated"`
}

// StatePath is where the state of device lives unless configured: beside an
// image file (".NAME.jumpwire-storage"), and for a block device in
// jumpwire-storage/ under the system's temporary directory.
func StatePath(device string) string {
	if st, err := os.Stat(device); err == nil && st.Mode()&fs.ModeDevice != 0 {
		name := strings.ReplaceAll(strings.TrimPrefix(filepath.Clean(device), "/"), "/", "_")
		return filepath.Join(os.TempDir(), "jumpwire-storage", name+".json")
	}
	return filepath.Join(filepath.Dir(device), "."+filepath.Base(device)+".jumpwire-storage")
}

// ReadState reads the state at path. A missing file is a device that was
// never written through jumpwire: switched to the DUT, complete.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Mux: DUT, Complete: true}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("storage: read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("storage: state file %s is damaged: %w", path, err)
	}
	switch s.Mux {
	case Host, DUT, Off:
	default:
		return State{}, fmt.Errorf("storage: state file %s: unknown mux position %q", path, s.Mux)
	}
	return s, nil
}

// writeState replaces the state at path atomically and durably.
func writeState(path string, s State) error {
	s.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("storage: encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("storage: state directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("storage: write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("storage: write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("storage: write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storage: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("storage: write state: %w", err)
	}
	return nil
}
