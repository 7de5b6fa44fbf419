// Package config loads and validates exporter configuration files.
//
// The file format is Jumpstarter's ExporterConfig (apiVersion
// jumpstarter.dev/v1alpha1), so files written for a Jumpstarter exporter load
// unchanged. Loading is strict: an unknown key, a value of the wrong type, a
// duplicate name or a dangling ref is an error. Every problem in the file is
// reported at once, one line each, as "file:line:col: key.path: what was
// expected" (see Errors).
//
// The `config` mapping of a driver instance is not checked here: it is
// converted to JSON-like values (Instance.Config) and validated later by the
// driver itself. Instance.ConfigPos and Instance.ConfigError map a driver's
// complaint about a config key back to the file.
package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Values the configuration file must hold, and defaults applied when it omits them.
const (
	// APIVersion is the only accepted value of `apiVersion`.
	APIVersion = "jumpstarter.dev/v1alpha1"
	// Kind is the only accepted value of `kind`.
	Kind = "ExporterConfig"

	// DefaultHookExec is the interpreter of a hook without `exec`.
	DefaultHookExec = "/bin/sh"
	// DefaultHookTimeout is the timeout of a hook without `timeout`.
	DefaultHookTimeout = 120 * time.Second

	// OnFailureWarn logs a failed hook and carries on (the default).
	OnFailureWarn = "warn"
	// OnFailureEndLease ends the lease when the hook fails.
	OnFailureEndLease = "endLease"
	// OnFailureExit takes the exporter offline when the hook fails.
	OnFailureExit = "exit"

	// DefaultMaxRapidFailures is the default of failureDetection.maxRapidFailures.
	DefaultMaxRapidFailures = 5
	// DefaultRapidFailureWindow is the default of failureDetection.rapidFailureWindow.
	DefaultRapidFailureWindow = 60 * time.Second
)

// Config is a loaded and validated exporter configuration file.
type Config struct {
	File       string   // path it was loaded from, as given to Load or Parse
	APIVersion string   // always APIVersion
	Kind       string   // always Kind
	Metadata   Metadata // Name is required: it seeds the instance uuids

	Endpoint    string // controller address (distributed mode); "" = local or direct only
	Token       string // controller token
	Description string // description of the root (the exporter itself)
	Motd        string // message of the day shown to clients
	Hooks       Hooks
	Export      []*Instance // top-level driver instances, in file order
	// Python is `python:` (a jumpwire extension): the interpreter or virtual
	// environment whose driver classes Python types name; "" = python3 on PATH.
	// A relative path is relative to the config file.
	Python string

	// Keys that Jumpstarter writes into the files it generates (`jmp`), accepted
	// so that those files load unchanged.
	TLS              TLS              // `tls`: how to reach the controller
	GRPCOptions      map[string]any   // `grpcOptions`: channel options, each a string or an int64
	FailureDetection FailureDetection // `failureDetection`: restart loop breaker
	ExitOnLeaseEnd   bool             // `exitOnLeaseEnd`: exit after a lease instead of serving the next
}

// Metadata names the exporter.
type Metadata struct {
	Namespace string // optional
	Name      string // required, non-empty
}

// Hooks are the scripts run around each lease. A nil hook is not configured.
type Hooks struct {
	BeforeLease *Hook // `beforeLease`
	AfterLease  *Hook // `afterLease`
}

// Hook is one lease hook. Defaults are applied: Exec is DefaultHookExec,
// Timeout DefaultHookTimeout and OnFailure OnFailureWarn when the file omits them.
type Hook struct {
	Script    string        // inline script or a file path, verbatim
	Exec      string        // interpreter
	Timeout   time.Duration // whole seconds in the file
	OnFailure string        // OnFailureWarn, OnFailureEndLease or OnFailureExit
	Pos       Pos           // position of the hook's key (`beforeLease:`)
}

// TLS is the `tls` section Jumpstarter writes for the controller connection.
type TLS struct {
	CA       string // `ca`: PEM bundle (or "" for the system roots)
	Insecure bool   // `insecure`: skip certificate verification
}

// FailureDetection is Jumpstarter's `failureDetection` section. Defaults are
// DefaultMaxRapidFailures and DefaultRapidFailureWindow.
type FailureDetection struct {
	MaxRapidFailures   int           // `maxRapidFailures`
	RapidFailureWindow time.Duration // `rapidFailureWindow`, whole seconds in the file
}

// Pos is a position in a configuration file. Line and Column start at 1; zero
// means unknown.
type Pos struct {
	File         string
	Line, Column int
}

// String returns "file:line:col", leaving out the parts that are unknown.
func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	return b.String()
}

// CompositeType is upstream Jumpstarter's type name of a composite: an
// instance of this type is a composite, as one without type is.
const CompositeType = "jumpstarter_driver_composite.driver.Composite"

// Instance is one entry of `export` or of an instance's `children`. It is
// exactly one of: a driver (Type set), a composite (no Type, no Ref: only
// Children) or a ref (Ref set: another name for an existing instance).
type Instance struct {
	Name    string // key in its parent
	Path    string // dotted path from the root, e.g. "dut.power"; what a ref names
	KeyPath string // dotted key path from the document root, e.g. "export.dut.children.power"

	Type   string // driver type name or alias; "" for a composite or a ref
	Plugin string // `plugin:` (a jumpwire extension): explicit plugin binary, verbatim; "" = search the catalog
	// SHA256 is `sha256:` (a jumpwire extension): the content hash the plugin
	// binary must have, 64 lowercase hex digits; "" = any binary.
	SHA256 string
	// Version is `version:` (a jumpwire extension): the version the plugin
	// binary must report, verbatim; "" = any (the newest on the search path).
	Version string

	// Config is the `config` mapping as JSON-like values: nil, bool, int64,
	// float64 (finite), string, []any and map[string]any. It is an empty map
	// for a driver without `config`, and nil for a composite or a ref.
	Config map[string]any

	Description        *string           // nil = keep the driver's own description
	MethodsDescription map[string]string // method name -> description; nil when absent
	Children           []*Instance       // in file order
	Ref                string            // dotted path of the instance this one aliases; "" if not a ref
	Pos                Pos               // position of the instance's key

	keys       map[string]Pos // positions of the instance's own keys (type, config, ...)
	refPos     Pos            // position of the ref's value
	configNode *yaml.Node     // the `config` mapping, for ConfigPos
}

// KeyPos returns the position of the instance's own key name ("type", "plugin",
// "config", "ref", ...), or of the instance when the key is absent.
func (i *Instance) KeyPos(name string) Pos {
	if p, ok := i.keys[name]; ok {
		return p
	}
	return i.Pos
}

// KeyError returns an error about the instance's own key name ("type",
// "plugin", ...), positioned at that key: for problems found after loading,
// such as a type that no plugin provides.
func (i *Instance) KeyError(name, msg string) *Error {
	return &Error{Pos: i.KeyPos(name), Key: joinKey(i.KeyPath, name), Msg: msg}
}

// ConfigPos returns the position of the key at dotted path key inside the
// instance's config: "baudrate", "ports.1.host" and "ports[1].host" all work,
// and a key that itself contains dots is matched whole. When the key does not
// exist it returns the position of the deepest part of the path that does,
// which is `config:` itself (or the instance, without `config:`) when none does.
func (i *Instance) ConfigPos(key string) Pos {
	base := i.KeyPos("config")
	if i.configNode == nil {
		return base
	}
	return lookupPos(i.configNode, key, base, 0)
}

// ConfigError returns an error about the config key at dotted path key (as
// accepted by ConfigPos), positioned in the file: how a driver's complaint
// about its config reaches the user.
func (i *Instance) ConfigError(key, msg string) *Error {
	k := joinKey(i.KeyPath, "config")
	switch {
	case key == "":
	case strings.HasPrefix(key, "["):
		k += key
	default:
		k += "." + key
	}
	return &Error{Pos: i.ConfigPos(key), Key: k, Msg: msg}
}

// Walk calls fn for every instance in pre-order (parents before children, in
// file order) and stops at the first error fn returns, returning it.
func (c *Config) Walk(fn func(*Instance) error) error {
	return walk(c.Export, fn)
}

func walk(list []*Instance, fn func(*Instance) error) error {
	for _, i := range list {
		if err := fn(i); err != nil {
			return err
		}
		if err := walk(i.Children, fn); err != nil {
			return err
		}
	}
	return nil
}

// Lookup returns the instance at dotted path (as in Instance.Path and Ref), or
// nil when there is none.
func (c *Config) Lookup(path string) *Instance {
	list := c.Export
	var found *Instance
	for _, name := range strings.Split(path, ".") {
		found = nil
		for _, i := range list {
			if i.Name == name {
				found = i
				break
			}
		}
		if found == nil {
			return nil
		}
		list = found.Children
	}
	return found
}

// Load reads and parses the configuration file at path. A file that cannot
// be read is an error wrapping the os error (errors.Is(err, fs.ErrNotExist)
// works); problems in its content are reported as Errors.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// MaxFileSize is the largest config file Load reads: exporter configs are a
// few kilobytes; anything near this is a mistake (a log, an image).
const MaxFileSize = 4 << 20

// ReadFile reads a config file: a regular file of at most MaxFileSize
// bytes. Anything else (a FIFO, which would block the read until someone
// writes to it; a device, which may never end; a directory) is refused
// with an error saying what it is. The file is opened without blocking, so
// a FIFO is seen for what it is before anything waits on it.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config: %s is %s, not a regular file", path, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("config: %s is %d bytes; a config file may be at most %d (4 MiB)", path, fi.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > MaxFileSize { // it grew while read
		return nil, fmt.Errorf("config: %s is more than %d bytes (4 MiB), the most a config file may be", path, MaxFileSize)
	}
	return data, nil
}

// fileKind names a file's type for an error.
func fileKind(m fs.FileMode) string {
	switch m.Type() {
	case fs.ModeDir:
		return "a directory"
	case fs.ModeNamedPipe:
		return "a FIFO (named pipe)"
	case fs.ModeSocket:
		return "a socket"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "a " + m.Type().String() + " file"
}

// Parse parses and validates data, the content of file (used only in
// positions). It returns either a Config or a non-empty Errors listing every
// problem found, sorted by position.
func Parse(file string, data []byte) (*Config, error) {
	p := newParser(file)
	var cfg *Config
	if root := p.document(data); root != nil {
		cfg = p.config(root)
		p.checkRefs(cfg)
	}
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	return cfg, nil
}
