// Package storage exports a block device or an image file as upstream
// Jumpstarter's storage mux and flasher (jumpstarter_driver_opendal's
// StorageMuxClient, FlasherClient and StorageMuxFlasherClient contracts):
// host(), dut() and off() switch the device, writes stream an image
// straight to it, and reads (read, dump) stream its content to a client. The binary jumpwire-driver-storage serves the three types.
//
// A write goes from the client's stream to the device with no copy of the
// image anywhere else: reading, writing and hashing run concurrently on a
// few 1 MiB buffers, the device is fsynced before the write succeeds, and
// the result carries the sha256 of what was written. The device's state
// (mux position, whether the last write completed, its sha256) lives in a
// small JSON file beside it (see [State]): a write marks the device
// incomplete before its first byte and complete only after the fsync, so a
// client that goes away mid-write leaves it marked not fully written.
//
// A storage mux refuses to write or read the device unless it is switched
// to the host. A flasher (which has no mux) always may.
package storage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Mux is a storage mux: host, dut, off, and the device's bytes.
var Mux = sdk.Type{
	Name:        "storage-mux",
	Aliases:     []string{"jumpstarter_driver_opendal.driver.MockStorageMux"},
	Client:      "jumpstarter_driver_opendal.client.StorageMuxClient",
	Description: "Storage mux",
	Exclusive:   true,
	New:         sdk.Factory(func(cfg Config) (*StorageMux, error) { s, err := New(cfg, true); return &StorageMux{s}, err }),
}

// Flasher is a flasher: it writes images to the device.
var Flasher = sdk.Type{
	Name:        "flasher",
	Aliases:     []string{"jumpstarter_driver_opendal.driver.MockFlasher"},
	Client:      "jumpstarter_driver_opendal.client.FlasherClient",
	Description: "Flasher",
	Exclusive:   true,
	New:         sdk.Factory(func(cfg Config) (*FlasherDriver, error) { s, err := New(cfg, false); return &FlasherDriver{s}, err }),
}

// MuxFlasher is a storage mux whose client flashes through it (host, write, dut).
var MuxFlasher = sdk.Type{
	Name:        "storage-mux-flasher",
	Aliases:     []string{"jumpstarter_driver_opendal.driver.MockStorageMuxFlasher"},
	Client:      "jumpstarter_driver_opendal.client.StorageMuxFlasherClient",
	Description: "Storage mux with a flasher",
	Exclusive:   true,
	New:         sdk.Factory(func(cfg Config) (*StorageMux, error) { s, err := New(cfg, true); return &StorageMux{s}, err }),
}

// Config configures a storage device.
type Config struct {
	Path  string `json:"path" doc:"the block device or image file; an image file is created by the first write (default: a temporary image file of the instance's own, removed when it closes, as upstream's mock types keep theirs)"`
	State string `json:"state" doc:"the file keeping the mux position and the last write's state (default: .NAME.jumpwire-storage beside an image file, under the temporary directory for a block device)"`
}

// Storage is the device and its state; the driver types wrap it.
type Storage struct {
	sdk.Base
	cfg       Config
	statePath string
	mux       bool   // a mux guards reads and writes by its position
	tempDir   string // holds the image of an instance configured without path; removed on Close

	mu   sync.Mutex
	busy string // the operation using the device, "" when idle
}

// New checks cfg and builds the device's driver core; mux says whether it
// is switched (a storage mux) or always the host's (a flasher).
func New(cfg Config, mux bool) (*Storage, error) {
	tempDir := ""
	if cfg.Path == "" {
		// As upstream's MockStorageMux and MockFlasher: a temporary image.
		d, err := os.MkdirTemp("", "jumpwire-storage-")
		if err != nil {
			return nil, fmt.Errorf("storage: no path configured, and no temporary image could be made: %w", err)
		}
		tempDir, cfg.Path = d, filepath.Join(d, "disk.img")
	}
	if !filepath.IsAbs(cfg.Path) {
		return nil, sdk.InvalidConfig("path", "must be an absolute path, got %q", cfg.Path)
	}
	if st, err := os.Stat(filepath.Dir(cfg.Path)); err != nil || !st.IsDir() {
		return nil, sdk.InvalidConfig("path", "the directory of %q does not exist", cfg.Path)
	}
	if st, err := os.Stat(cfg.Path); err == nil && st.IsDir() {
		return nil, sdk.InvalidConfig("path", "%q is a directory; name a block device or an image file", cfg.Path)
	}
	s := &Storage{cfg: cfg, statePath: cfg.State, mux: mux, tempDir: tempDir}
	if s.statePath == "" {
		s.statePath = StatePath(cfg.Path)
	}
	return s, nil
}

// Close removes the temporary image of an instance configured without path.
func (s *Storage) Close(context.Context) error {
	if s.tempDir == "" {
		return nil
	}
	return os.RemoveAll(s.tempDir)
}

// acquire marks the device in use by op, or says who uses it.
func (s *Storage) acquire(op string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy != "" {
		return nil, fmt.Errorf("%w: storage: %s is in use by a %s; wait for it to finish", sdk.ErrBusy, s.cfg.Path, s.busy)
	}
	s.busy = op
	return func() {
		s.mu.Lock()
		s.busy = ""
		s.mu.Unlock()
	}, nil
}

func (s *Storage) state() (State, error) { return ReadState(s.statePath) }

// Status is what status() reports.
type Status struct {
	State
	Path string `json:"path"`
	Busy string `json:"busy,omitempty"` // the operation in progress
}

// Status reports the mux position and the last write's state.
func (s *Storage) Status(context.Context) (Status, error) {
	st, err := s.state()
	if err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{State: st, Path: s.cfg.Path, Busy: s.busy}, nil
}

// switchTo moves the mux to pos; not while the device is in use.
func (s *Storage) switchTo(pos string) error {
	release, err := s.acquire("switch")
	if err != nil {
		return err
	}
	defer release()
	st, err := s.state()
	if err != nil {
		return err
	}
	if st.Mux == pos {
		return nil
	}
	st.Mux = pos
	if err := writeState(s.statePath, st); err != nil {
		return err
	}
	if pos == Host {
		s.dropDeviceCache()
	}
	s.Logger().Info("switched", "to", pos)
	return nil
}

// dropDeviceCache drops a block device's page cache when it comes back to
// the host: the board may have written the medium while it had it, and
// reads must see that, not what the host cached before.
func (s *Storage) dropDeviceCache() {
	st, err := os.Stat(s.cfg.Path)
	if err != nil || st.Mode()&fs.ModeDevice == 0 {
		return
	}
	f, err := os.Open(s.cfg.Path)
	if err == nil {
		err = flushBuffers(f)
		f.Close()
	}
	if err != nil {
		s.Logger().Warn("could not drop the device's cache; reads may see what it held before the DUT had it", "error", err)
	}
}

// StorageMux is the storage-mux and storage-mux-flasher driver. (Mux is its
// sdk.Type.)
type StorageMux struct{ *Storage } //nolint:revive // storage.Mux is the driver type

// FlasherDriver is the flasher driver.
type FlasherDriver struct{ *Storage }

// Interface guards
var (
	_ sdk.Driver = (*StorageMux)(nil)
	_ sdk.Driver = (*FlasherDriver)(nil)
)

// Exports lists a storage mux's methods.
func (m *StorageMux) Exports() []sdk.Method {
	return append([]sdk.Method{
		sdk.Export("host", m.Host, "Connect the storage to the host"),
		sdk.Export("dut", m.DUT, "Connect the storage to the DUT"),
		sdk.Export("off", m.Off, "Disconnect the storage"),
		sdk.Export("write", m.Write, "Write a client's upload (an image, gzip decompressed) to the storage; switch it to the host first"),
		sdk.Export("read", m.Read, "Send the storage's content to a client's resource; switch it to the host first"),
	}, m.common()...)
}

// Exports lists a flasher's methods.
func (f *FlasherDriver) Exports() []sdk.Method {
	return append([]sdk.Method{
		sdk.Export("flash", f.Flash, "Write a client's upload (an image, gzip decompressed) to the device"),
		sdk.Export("dump", f.Dump, "Send the device's content to a client's resource"),
	}, f.common()...)
}

func (s *Storage) common() []sdk.Method {
	return []sdk.Method{
		sdk.Export("status", s.Status, "The mux position and whether the last write completed, with its sha256"),
		sdk.ExportStream("write_stream", s.WriteStream, "Write the image sent on this stream to the storage (gzip is decompressed); answers JSON lines: progress, then the result"),
		sdk.ExportStream("read_stream", s.ReadStream, "Send the storage's content"),
	}
}

// Write writes the client's upload to the device and returns how many
// bytes reached it and their sha256, once they are on it (fsynced).
func (s *Storage) Write(ctx context.Context, src sdk.Resource) (Result, error) {
	size, _ := src.Size()
	return s.writeImage(ctx, src, size, s.logProgress())
}

// Flash writes the client's upload to the device, as Write. target names
// the partition upstream's flashers take; this device has one, which may be
// named "root" or left out.
func (s *Storage) Flash(ctx context.Context, source sdk.Resource, target *string) (Result, error) {
	if target != nil && *target != "" && *target != "root" {
		return Result{}, fmt.Errorf("%w: storage: %s has a single target; leave it out (or name it root), got %q", sdk.ErrInvalidArgument, s.cfg.Path, *target)
	}
	return s.Write(ctx, source)
}

// Read sends the device's content to the client's resource and returns
// how many bytes it sent and their sha256. A storage mux must be switched
// to the host.
func (s *Storage) Read(ctx context.Context, dst sdk.Download) (Result, error) {
	return s.readTo(ctx, dst)
}

// Dump sends the device's content to the client's resource, as Read.
// partition names the partition upstream's flashers take, as Flash's
// target does.
func (s *Storage) Dump(ctx context.Context, target sdk.Download, partition *string) (Result, error) {
	if partition != nil && *partition != "" && *partition != "root" {
		return Result{}, fmt.Errorf("%w: storage: %s has a single partition; leave it out (or name it root), got %q", sdk.ErrInvalidArgument, s.cfg.Path, *partition)
	}
	return s.Read(ctx, target)
}

// logProgress logs a write's progress every few seconds.
func (s *Storage) logProgress() func(Progress) {
	var last time.Time
	return func(p Progress) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		s.Logger().Info("writing", "bytes", p.Bytes, "total", p.Total, "MB/s", fmt.Sprintf("%.1f", p.Rate/1e6), "eta_s", fmt.Sprintf("%.0f", p.ETA))
	}
}

// Host switches the storage to the host.
func (s *Storage) Host(context.Context) error { return s.switchTo(Host) }

// DUT switches the storage to the DUT.
func (s *Storage) DUT(context.Context) error { return s.switchTo(DUT) }

// Off disconnects the storage.
func (s *Storage) Off(context.Context) error { return s.switchTo(Off) }
