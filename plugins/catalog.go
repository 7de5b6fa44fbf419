// Package plugins is the catalog of driver types: which plugin binaries are
// on the search path and which driver types (and upstream aliases) each
// provides, learned by asking each binary.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
)

// Prefix is how plugin binaries on the search path are named:
// jumpwire-driver-<name>. Other files there are ignored.
const Prefix = "jumpwire-driver-"

// PathEnv is the environment variable holding extra plugin directories,
// separated by colons.
const PathEnv = "JUMPWIRE_PLUGIN_PATH"

// Describer asks a binary what it provides, by launching it as a plugin.
type Describer func(ctx context.Context, binary string) (*pluginv1.DescribeResponse, error)

// Entry is one plugin binary and what it provides.
type Entry struct {
	// Binary is the executable's absolute path.
	Binary string
	// Info is what the binary answered when asked.
	Info *pluginv1.DescribeResponse
}

// Type returns the driver type the binary provides under name (or an alias).
func (e *Entry) Type(name string) *pluginv1.DriverType {
	for _, t := range e.Info.GetTypes() {
		if t.Name == name || slices.Contains(t.Aliases, name) {
			return t
		}
	}
	return nil
}

// Catalog finds the plugin binary that provides a driver type.
type Catalog struct {
	dirs     []string
	describe Describer

	mu       sync.Mutex
	scanned  bool
	entries  []*Entry          // search-path binaries, in search order
	byBinary map[string]*Entry // every binary described so far
	problems []error           // binaries on the search path that failed to describe
}

// New returns a catalog over the directories dirs (searched in order),
// asking binaries what they provide with describe.
func New(dirs []string, describe Describer) *Catalog {
	return &Catalog{dirs: dirs, describe: describe, byBinary: map[string]*Entry{}}
}

// SearchPath is the plugin search path: the given directories (from
// --plugin-dir), then those in $JUMPWIRE_PLUGIN_PATH, then the plugins
// directory next to the running executable (where `make build` puts them).
func SearchPath(dirs []string) []string {
	out := append([]string(nil), dirs...)
	for _, d := range filepath.SplitList(os.Getenv(PathEnv)) {
		if d != "" {
			out = append(out, d)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			out = append(out, filepath.Join(filepath.Dir(exe), "plugins"))
		}
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, d := range out {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if !seen[d] {
			seen[d] = true
			uniq = append(uniq, d)
		}
	}
	return uniq
}

// Dirs returns the directories the catalog searches.
func (c *Catalog) Dirs() []string { return c.dirs }

// Scan asks every plugin binary on the search path what it provides (in
// parallel). It runs once; later calls return at once.
func (c *Catalog) Scan(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scanned {
		return
	}
	c.scanned = true
	var bins []string
	for _, d := range c.dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue // a search-path directory that does not exist is not an error
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), Prefix) && !e.IsDir() {
				bins = append(bins, filepath.Join(d, e.Name()))
			}
		}
	}
	results := make([]*Entry, len(bins))
	errs := make([]error, len(bins))
	var wg sync.WaitGroup
	for i, b := range bins {
		wg.Go(func() { results[i], errs[i] = c.describeLocked(ctx, b) })
	}
	wg.Wait()
	for i := range bins {
		if errs[i] != nil {
			c.problems = append(c.problems, errs[i])
			continue
		}
		c.entries = append(c.entries, results[i])
	}
}

// describeLocked describes one binary. It only reads byBinary under the
// caller's lock and writes it after the parallel part, so it takes no lock.
func (c *Catalog) describeLocked(ctx context.Context, binary string) (*Entry, error) {
	info, err := c.describe(ctx, binary)
	if err != nil {
		return nil, err
	}
	return &Entry{Binary: binary, Info: info}, nil
}

// Entries returns the binaries on the search path and what they provide, and
// the binaries that could not be asked.
func (c *Catalog) Entries(ctx context.Context) ([]*Entry, []error) {
	c.Scan(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.entries), slices.Clone(c.problems)
}

// Lookup finds the binary on the search path that provides the driver type
// name (a short name or an alias). The first binary on the search path wins.
func (c *Catalog) Lookup(ctx context.Context, name string) (*Entry, *pluginv1.DriverType, error) {
	entries, problems := c.Entries(ctx)
	for _, e := range entries {
		if t := e.Type(name); t != nil {
			return e, t, nil
		}
	}
	return nil, nil, c.unknownType(name, entries, problems)
}

// ErrUnknownType is returned (wrapped) when no binary provides a type.
var ErrUnknownType = errors.New("unknown driver type")

func (c *Catalog) unknownType(name string, entries []*Entry, problems []error) error {
	var known []string
	for _, e := range entries {
		for _, t := range e.Info.GetTypes() {
			known = append(known, t.Name)
		}
	}
	sort.Strings(known)
	known = slices.Compact(known)
	msg := ""
	if len(known) > 0 {
		msg = "; known types: " + strings.Join(known, ", ")
	} else {
		msg = "; no plugin binaries found"
	}
	msg += " (searched " + strings.Join(c.dirs, ", ") + "; add directories with --plugin-dir or " + PathEnv + ")"
	for _, p := range problems {
		msg += "; skipped " + p.Error()
	}
	return fmt.Errorf("%w %q%s", ErrUnknownType, name, msg)
}

// Binary describes an explicitly named plugin binary (an instance's
// `plugin:` key), remembering the answer.
func (c *Catalog) Binary(ctx context.Context, path string) (*Entry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok := c.byBinary[abs]
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	e, err = c.describeLocked(ctx, abs)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.byBinary[abs] = e
	c.mu.Unlock()
	return e, nil
}
