// Package plugins is the catalog of driver types: which plugin binaries are
// on the search path and which driver types (and upstream aliases) each
// provides, learned by asking each binary.
//
// What a binary provides is learned once per sha256 of its content and
// remembered in memory and on disk (CacheDir), so a binary is launched to be
// described only the first time its content is seen. When several binaries
// provide the same type, the newest version wins unless an instance pins a
// version or a hash (Pin). The exporter runs each plugin from a private,
// read-only copy of the verified file (Install), so replacing a file on disk
// cannot change the code of a running exporter.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// Prefix is how plugin binaries on the search path are named:
// jumpwire-driver-<name>. Other files there are ignored.
const Prefix = "jumpwire-driver-"

// PathEnv is the environment variable holding extra plugin directories,
// separated by colons.
const PathEnv = "JUMPWIRE_PLUGIN_PATH"

// Describer asks a binary what it provides, by launching it as a plugin.
type Describer func(ctx context.Context, binary string) (*pluginv1.DescribeResponse, error)

// ErrUnknownType is returned (wrapped) when no binary provides a type.
var ErrUnknownType = errors.New("unknown driver type")

// Failure is a binary on the search path that could not be described.
type Failure struct {
	// Binary is the executable's absolute path.
	Binary string
	// Err says why; it names the binary.
	Err error
}

// Error returns the reason, which names the binary.
func (f *Failure) Error() string { return f.Err.Error() }

// Unwrap returns the reason.
func (f *Failure) Unwrap() error { return f.Err }

// Option configures a Catalog.
type Option func(*Catalog)

// WithCacheDir sets the directory remembering what each binary content
// provides, as <sha256>.json. "" keeps answers in memory only. Default:
// CacheDir().
func WithCacheDir(dir string) Option { return func(c *Catalog) { c.cacheDir = dir } }

// WithRuntimeDir sets the directory under which Install makes a private
// directory for its copies. Default: RuntimeDir().
func WithRuntimeDir(dir string) Option { return func(c *Catalog) { c.runtimeDir = dir } }

// Catalog finds the plugin binary that provides a driver type.
type Catalog struct {
	dirs       []string
	describe   Describer
	cacheDir   string
	runtimeDir string
	python     string // interpreter or virtual environment for Python types

	pyMu    sync.Mutex
	pyKnown map[string]pythonCache // interpreter \x00 type -> what it said

	mu       sync.Mutex
	scanned  bool
	entries  []*Entry   // search-path binaries, in search order
	failures []*Failure // binaries on the search path that failed to describe

	known knowledge // hashes and answers, shared by every scan
	inst  installer // the private copies
}

// New returns a catalog over the directories dirs (searched in order),
// asking binaries what they provide with describe.
func New(dirs []string, describe Describer, opts ...Option) *Catalog {
	c := &Catalog{dirs: dirs, describe: describe, cacheDir: CacheDir(), runtimeDir: RuntimeDir()}
	for _, o := range opts {
		o(c)
	}
	c.known.init()
	return c
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
// parallel; binaries whose content was seen before are not launched). It
// runs once; later calls return at once.
func (c *Catalog) Scan(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scanned {
		return
	}
	c.scanLocked(ctx)
}

// Rescan looks at the search path again, for binaries added, removed or
// replaced since the last scan. Binaries whose content is known are not
// launched again.
func (c *Catalog) Rescan(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scanLocked(ctx)
}

func (c *Catalog) scanLocked(ctx context.Context) {
	c.scanned = true
	var (
		bins    []string
		badDirs []*Failure
	)
	for _, d := range c.dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a search-path directory that does not exist is not an error
		}
		if err != nil { // one that cannot be read is: its plugins are missing
			badDirs = append(badDirs, &Failure{Binary: d, Err: fmt.Errorf("plugin directory %s cannot be read: %w", d, errors.Unwrap(err))})
			continue
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
		wg.Go(func() { results[i], errs[i] = c.entry(ctx, b) })
	}
	wg.Wait()
	c.entries, c.failures = nil, badDirs
	for i, b := range bins {
		if errs[i] != nil {
			c.failures = append(c.failures, &Failure{Binary: b, Err: errs[i]})
			continue
		}
		c.entries = append(c.entries, results[i])
	}
}

// entry hashes one binary and learns what it provides.
func (c *Catalog) entry(ctx context.Context, binary string) (*Entry, error) {
	sum, err := c.known.sum(binary)
	if err != nil {
		return nil, err
	}
	info, err := c.known.info(ctx, c, binary, sum)
	if err != nil {
		return nil, err
	}
	return &Entry{Binary: binary, SHA256: sum, Info: info}, nil
}

// Entries returns the binaries on the search path and what they provide, and
// the binaries that could not be asked.
func (c *Catalog) Entries(ctx context.Context) ([]*Entry, []*Failure) {
	c.Scan(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.entries), slices.Clone(c.failures)
}

// Lookup finds the binary on the search path that provides the driver type
// name (a short name or an alias) and matches pin. Among several, the newest
// version wins (see Newer); between equal versions, the first on the search
// path. No binary providing name is an ErrUnknownType; none matching pin is
// a *PinError.
func (c *Catalog) Lookup(ctx context.Context, name string, pin Pin) (*Entry, *pluginv1.DriverType, error) {
	entries, failures := c.Entries(ctx)
	cands := providers(entries, name)
	if len(cands) == 0 {
		if looksLikeClass(name) {
			// No Go binary provides it: a Python driver class, if the
			// configured interpreter can import it.
			return c.LookupPython(ctx, name, "", pin)
		}
		return nil, nil, c.unknownType(name, entries, failures)
	}
	matching, err := pin.filter(name, cands)
	if err != nil {
		return nil, nil, err
	}
	e := matching[0]
	return e, e.Type(name), nil
}

// ProvidedByBinary reports whether a binary on the search path provides
// the type name: then it wins over a Python class of that name.
func (c *Catalog) ProvidedByBinary(ctx context.Context, name string) bool {
	entries, _ := c.Entries(ctx)
	return len(providers(entries, name)) > 0
}

func (c *Catalog) unknownType(name string, entries []*Entry, failures []*Failure) error {
	known := TypeNames(entries)
	msg := ""
	if len(known) > 0 {
		msg = "; known types: " + strings.Join(known, ", ")
	} else {
		msg = "; no plugin binaries found"
	}
	msg += " (searched " + strings.Join(c.dirs, ", ") + "; add directories with --plugin-dir or " + PathEnv + ")"
	for _, f := range failures {
		msg += "; skipped " + f.Error()
	}
	return fmt.Errorf("%w %q%s", ErrUnknownType, name, msg)
}

// TypeNames lists the driver type names (not aliases) the entries provide,
// sorted, each once.
func TypeNames(entries []*Entry) []string {
	var known []string
	for _, e := range entries {
		for _, t := range e.Info.GetTypes() {
			known = append(known, t.Name)
		}
	}
	sort.Strings(known)
	return slices.Compact(known)
}

// Binary describes an explicitly named plugin binary (an instance's
// `plugin:` key). A binary whose content does not have the pinned sha256 is
// refused before it is run (with a pinned sha256, the binary is asked from
// its verified private copy, see Install); one that does not report the
// pinned version after. Both are a *PinError.
func (c *Catalog) Binary(ctx context.Context, path string, pin Pin) (*Entry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	sum, err := c.known.sum(abs)
	if err != nil {
		return nil, err
	}
	e := &Entry{Binary: abs, SHA256: sum}
	run := abs
	if pin.SHA256 != "" {
		if sum != pin.SHA256 {
			return nil, &PinError{Key: PinSHA256, Want: pin.SHA256, Found: []Found{{Binary: abs, Value: sum}}}
		}
		// Asked from its verified copy: content that does not match never runs.
		inst, err := c.Install(ctx, e, pin)
		if err != nil {
			return nil, err
		}
		run = inst.Binary
	}
	if e.Info, err = c.known.info(ctx, c, run, sum); err != nil {
		if run != abs { // name the binary the user knows
			err = errors.New(strings.ReplaceAll(err.Error(), run, abs))
		}
		return nil, err
	}
	if _, err := pin.filter("", []*Entry{e}); err != nil {
		return nil, err
	}
	return e, nil
}
