package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// nextBoot is what upstream's QemuClient sets on the board for its next
// power on (set_memory_size, set_disk_size). The root driver writes it to
// STATE/next-boot.json; the power driver applies it at on().
type nextBoot struct {
	Memory   string `json:"memory,omitempty"`
	DiskSize string `json:"disk_size,omitempty"`
}

func nextBootFile(dir string) string { return filepath.Join(dir, "next-boot.json") }

// readNextBoot reads the board's settings for its next boot; none is empty.
func readNextBoot(dir string) (nextBoot, error) {
	var nb nextBoot
	b, err := os.ReadFile(nextBootFile(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nb, nil
	}
	if err != nil {
		return nb, fmt.Errorf("qemu: %w", err)
	}
	if err := json.Unmarshal(b, &nb); err != nil {
		return nb, fmt.Errorf("qemu: %s is damaged: %w", nextBootFile(dir), err)
	}
	return nb, nil
}

// update changes the next boot's settings with set.
func (r *Root) update(set func(*nextBoot)) error {
	nb, err := readNextBoot(r.cfg.StateDir)
	if err != nil {
		return err
	}
	set(&nb)
	b, _ := json.Marshal(nb)
	if err := os.MkdirAll(r.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("%w: qemu: state directory: %w", sdk.ErrUnavailable, err)
	}
	tmp := nextBootFile(r.cfg.StateDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	if err := os.Rename(tmp, nextBootFile(r.cfg.StateDir)); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// SetMemorySize sets the memory of the board's next boots, e.g. "1G".
func (r *Root) SetMemorySize(_ context.Context, size string) error {
	if _, err := parseSize(size); err != nil {
		return fmt.Errorf("%w: qemu: memory size: %w", sdk.ErrInvalidArgument, err)
	}
	return r.update(func(nb *nextBoot) { nb.Memory = size })
}

// SetDiskSize grows the board's disk to size (e.g. "2G") before its next
// boot; shrinking is refused then.
func (r *Root) SetDiskSize(_ context.Context, size string) error {
	if _, err := parseDiskSize(size); err != nil {
		return fmt.Errorf("%w: qemu: disk size: %w", sdk.ErrInvalidArgument, err)
	}
	return r.update(func(nb *nextBoot) { nb.DiskSize = size })
}

// parseDiskSize reads a disk size: a number of bytes with an optional K, M,
// G or T (powers of 1024).
func parseDiskSize(s string) (int64, error) {
	if s != "" && s[len(s)-1] >= '0' && s[len(s)-1] <= '9' {
		n, err := parseSize(s + "K") // bytes: parse as K, then scale back
		return n >> 10, err
	}
	return parseSize(s)
}

// applyNextBoot returns the memory to boot with, after growing the disk to
// the size the root set, if any.
func (p *QemuPower) applyNextBoot() (memory string, err error) {
	nb, err := readNextBoot(p.cfg.StateDir)
	if err != nil {
		return "", err
	}
	memory = p.cfg.Memory
	if nb.Memory != "" {
		memory = nb.Memory
	}
	if nb.DiskSize == "" {
		return memory, nil
	}
	want, err := parseDiskSize(nb.DiskSize)
	if err != nil {
		return "", fmt.Errorf("%w: qemu: disk size %q: %w", sdk.ErrInvalidArgument, nb.DiskSize, err)
	}
	st, err := os.Stat(p.cfg.Disk)
	if errors.Is(err, fs.ErrNotExist) {
		return memory, nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: qemu: %w", sdk.ErrUnavailable, err)
	}
	switch {
	case want < st.Size():
		return "", fmt.Errorf("%w: qemu: the disk is %d bytes; shrinking it to %s is not supported", sdk.ErrInvalidArgument, st.Size(), nb.DiskSize)
	case want > st.Size():
		if err := os.Truncate(p.cfg.Disk, want); err != nil {
			return "", fmt.Errorf("%w: qemu: grow the disk: %w", sdk.ErrIO, err)
		}
		p.Logger().Info("disk grown", "bytes", want)
	}
	return memory, nil
}
