package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// RuntimeDir is where an exporter keeps its private files (the same
// directory `jw run` puts its socket in): $XDG_RUNTIME_DIR/jumpwire, or
// <tmp>/jumpwire-<uid> without XDG_RUNTIME_DIR.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "jumpwire")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("jumpwire-%d", os.Getuid()))
}

// copiesPrefix starts the name of each catalog's private directory of
// copies: plugins-<pid>-<random>.
const copiesPrefix = "plugins-"

// installer keeps the private copies of one catalog.
type installer struct {
	mu     sync.Mutex
	dir    string            // the private directory; "" until the first Install
	lock   io.Closer         // held while dir is in use (see lockDir)
	copies map[string]string // sha256 -> the copy's path
}

// Install returns an entry like e whose Binary is a private, read-only copy
// of e's binary, made for this catalog and verified to have e's sha256; its
// Source is e's path. Run the copy instead of the original: replacing the
// original on disk does not change it, and a restarted plugin runs the same
// code. Copies live in <runtime dir>/plugins-<pid>-<random>/<sha256>/ (mode
// 0700, the copy 0500) until Close; a content is copied once.
//
// When the original no longer has e's sha256 it is refused: as a *PinError
// when pin pins the hash, else as a file that changed since it was described.
func (c *Catalog) Install(ctx context.Context, e *Entry, pin Pin) (*Entry, error) {
	if e.Python != nil {
		// A Python class runs from its environment: there is no one file to
		// copy. Its distribution's hash was checked against the pin.
		return e, nil
	}
	c.inst.mu.Lock()
	defer c.inst.mu.Unlock()
	if p, ok := c.inst.copies[e.SHA256]; ok {
		return installed(e, p), nil
	}
	dir, err := c.inst.private(c.runtimeDir)
	if err != nil {
		return nil, err
	}
	sub := filepath.Join(dir, e.SHA256)
	if err := os.Mkdir(sub, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	dst := filepath.Join(sub, filepath.Base(e.Path()))
	sum, err := copyBinary(ctx, e.Path(), dst)
	if err != nil {
		os.RemoveAll(sub)
		return nil, err
	}
	if sum != e.SHA256 {
		os.RemoveAll(sub)
		if pin.SHA256 != "" {
			return nil, &PinError{Key: PinSHA256, Want: pin.SHA256, Found: []Found{{Binary: e.Path(), Value: sum}}}
		}
		return nil, fmt.Errorf("%s changed since it was described (sha256 %s, now %s); start again to use the new binary",
			e.Path(), e.SHA256, sum)
	}
	if c.inst.copies == nil {
		c.inst.copies = map[string]string{}
	}
	c.inst.copies[e.SHA256] = dst
	return installed(e, dst), nil
}

func installed(e *Entry, path string) *Entry {
	cp := *e
	cp.Source, cp.Binary = e.Path(), path
	return &cp
}

// copyBinary copies src to dst (which must not exist), makes it read-only
// and returns the sha256 of the copy as it is on disk.
func copyBinary(ctx context.Context, src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fileError(src, err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return "", fmt.Errorf("plugins: copy %s: %w", src, err)
	}
	_, err = io.Copy(out, ctxReader{ctx, in})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, 0o500)
	}
	if err != nil {
		return "", fmt.Errorf("plugins: copy %s to %s: %w", src, dst, err)
	}
	sum, _, err := hashFile(ctx, dst)
	return sum, err
}

// private returns the catalog's private directory, making it (and cleaning
// the directories of exporters that are gone) the first time.
func (i *installer) private(root string) (string, error) {
	if i.dir != "" {
		return i.dir, nil
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("plugins: runtime directory: %w", err)
	}
	if err := checkPrivate(root); err != nil {
		return "", err
	}
	removeStale(root)
	dir, err := os.MkdirTemp(root, fmt.Sprintf("%s%d-", copiesPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("plugins: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("plugins: %w", err)
	}
	i.dir, i.lock = dir, lock
	return dir, nil
}

// removeStale removes the private directories under root that no live
// catalog holds (left by an exporter that was killed).
func removeStale(root string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), copiesPrefix) && unheld(filepath.Join(root, e.Name())) {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// Close removes the copies Install made. Run no plugin from them afterwards.
// A later Install starts a new private directory. Close is idempotent.
func (c *Catalog) Close() error {
	c.inst.mu.Lock()
	defer c.inst.mu.Unlock()
	if c.inst.dir == "" {
		return nil
	}
	err := os.RemoveAll(c.inst.dir)
	c.inst.lock.Close()
	c.inst.dir, c.inst.lock, c.inst.copies = "", nil, nil
	if err != nil {
		return fmt.Errorf("plugins: remove the plugin copies: %w", err)
	}
	return nil
}
