package plugins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/encoding/protojson"
)

// DefaultPython is the interpreter that provides Python driver types when
// none is configured: python3 on PATH.
const DefaultPython = "python3"

// PythonPlugin is what an instance's `plugin:` says to run its type with the
// Python plugin host even when a Go binary provides the type too;
// "python:/path/to/python" also names the interpreter.
const PythonPlugin = "python"

// PyhostModule is the module of the Python plugin host (python/ in this
// repository, pip package jumpwire-pyhost).
const PyhostModule = "jumpwire_pyhost"

// Python is the Python side of an entry: a driver class importable by an
// interpreter, and the installed distribution it comes from.
type Python struct {
	// Interpreter is the python executable (absolute) that imports the class.
	Interpreter string
	// Type is the class's import path, e.g. jumpstarter_driver_shell.driver.Shell.
	Type string
	// Package and Version name the installed distribution providing the
	// class; both "" for a class found on PYTHONPATH outside any distribution.
	Package, Version string
}

// WithPython sets the Python interpreter (or virtual environment directory)
// whose importable driver classes the catalog offers. Default: DefaultPython.
func WithPython(python string) Option { return func(c *Catalog) { c.python = python } }

// PythonNamed reports whether the catalog was given an interpreter, rather
// than using the default.
func (c *Catalog) PythonNamed() bool { return c.python != "" }

// Interpreter resolves the configured Python: a virtual environment
// directory means its bin/python, a bare name is looked up on PATH.
func (c *Catalog) Interpreter() (string, error) { return resolvePython(c.python) }

// InterpreterOf resolves python as LookupPython does: "" is the catalog's.
func (c *Catalog) InterpreterOf(python string) (string, error) {
	if python == "" {
		python = c.python
	}
	return resolvePython(python)
}

func resolvePython(python string) (string, error) {
	if python == "" {
		python = DefaultPython
	}
	if fi, err := os.Stat(python); err == nil && fi.IsDir() {
		python = filepath.Join(python, "bin", "python")
	}
	path, err := exec.LookPath(python)
	if err != nil {
		return "", fmt.Errorf("python interpreter %q: %w (set --python to an interpreter or a virtual environment)", python, err)
	}
	return filepath.Abs(path)
}

// looksLikeClass reports whether name can be a Python import path of a class
// ("package.module.Class"): only Python types are asked of the interpreter.
func looksLikeClass(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || !isIdent(p) {
			return false
		}
	}
	return true
}

func isIdent(s string) bool {
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// inspected is what `python -m jumpwire_pyhost inspect` says of one class.
type inspected struct {
	Type    string          `json:"type"`
	Package string          `json:"package"`
	Version string          `json:"version"`
	SHA256  string          `json:"sha256"`
	Record  string          `json:"record"`
	Source  string          `json:"source"`
	Driver  json.RawMessage `json:"driver"`
	Error   string          `json:"error"`
}

type inspectOutput struct {
	Pyhost     string      `json:"pyhost"`
	Python     string      `json:"python"`
	Executable string      `json:"executable"`
	Types      []inspected `json:"types"`
}

// pythonCache is one learned class, kept in the cache directory with the
// key of the file whose change means the answer may be stale (the
// distribution's RECORD, which pip rewrites on every install, or the class's
// module outside any distribution).
type pythonCache struct {
	Inspected inspected `json:"inspected"`
	Pyhost    string    `json:"pyhost"`
	Key       string    `json:"key"`
}

// stamp is the cache key of a file: path, size, times and inode.
func stamp(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s|%+v", path, keyOf(fi))
}

func pythonCacheFile(dir, interpreter, typ string) string {
	h := sha256.Sum256([]byte(interpreter + "\x00" + typ))
	return filepath.Join(dir, "python-"+hex.EncodeToString(h[:12])+".json")
}

// LookupPython finds the driver class typ in the configured Python
// environment, matching pin (its `version:` is the distribution's version,
// its `sha256:` the hash of the distribution's files as `jw plugins list`
// shows it). What the interpreter says of a class is learned once per
// installed version of its distribution and cached. A class the interpreter
// cannot import is an ErrUnknownType naming the pip install that provides it.
func (c *Catalog) LookupPython(ctx context.Context, typ, python string, pin Pin) (*Entry, *pluginv1.DriverType, error) {
	if python == "" {
		python = c.python
	}
	interp, err := resolvePython(python)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %q: %w", ErrUnknownType, typ, err)
	}
	in, err := c.inspectPython(ctx, interp, typ)
	if err != nil {
		return nil, nil, err
	}
	e, err := pythonEntry(interp, in)
	if err != nil {
		return nil, nil, err
	}
	if _, err := pin.filter(typ, []*Entry{e}); err != nil {
		return nil, nil, err
	}
	return e, e.Info.Types[0], nil
}

func (c *Catalog) inspectPython(ctx context.Context, interp, typ string) (inspected, error) {
	in, ok := c.cachedPython(interp, typ)
	if !ok {
		if err := c.learnPython(ctx, interp, []string{typ}); err != nil {
			return inspected{}, fmt.Errorf("%w %q: %w", ErrUnknownType, typ, err)
		}
		in, _ = c.cachedPython(interp, typ)
	}
	if in.Error != "" {
		return inspected{}, fmt.Errorf("%w %q: no Go plugin provides it and %s cannot import it: %s", ErrUnknownType, typ, interp, in.Error)
	}
	return in, nil
}

// cachedPython returns what was learned of typ, if it still holds.
func (c *Catalog) cachedPython(interp, typ string) (inspected, bool) {
	c.pyMu.Lock()
	defer c.pyMu.Unlock()
	k := interp + "\x00" + typ
	if pc, ok := c.pyKnown[k]; ok && (pc.Inspected.Error != "" || pc.Key == cacheKey(interp, pc.Inspected)) {
		return pc.Inspected, true
	}
	if c.cacheDir == "" {
		return inspected{}, false
	}
	data, err := os.ReadFile(pythonCacheFile(c.cacheDir, interp, typ))
	if err != nil {
		return inspected{}, false
	}
	var pc pythonCache
	if json.Unmarshal(data, &pc) != nil || pc.Key == "" || pc.Key != cacheKey(interp, pc.Inspected) {
		return inspected{}, false
	}
	c.rememberLocked(k, pc)
	return pc.Inspected, true
}

func (c *Catalog) rememberLocked(k string, pc pythonCache) {
	if c.pyKnown == nil {
		c.pyKnown = map[string]pythonCache{}
	}
	c.pyKnown[k] = pc
}

// LearnPython asks the interpreter python (default: the catalog's) about
// every class of types it has not learned yet, in one run: an exporter with
// many Python instances starts one interpreter for all of them.
func (c *Catalog) LearnPython(ctx context.Context, python string, types []string) error {
	if python == "" {
		python = c.python
	}
	interp, err := resolvePython(python)
	if err != nil {
		return err
	}
	var todo []string
	for _, t := range types {
		if _, ok := c.cachedPython(interp, t); !ok && looksLikeClass(t) {
			todo = append(todo, t)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return c.learnPython(ctx, interp, todo)
}

func (c *Catalog) learnPython(ctx context.Context, interp string, types []string) error {
	out, err := RunPyhost(ctx, interp, append([]string{"inspect"}, types...)...)
	if err != nil {
		return err
	}
	c.pyMu.Lock()
	defer c.pyMu.Unlock()
	for _, in := range out.Types {
		pc := pythonCache{Inspected: in, Pyhost: out.Pyhost, Key: cacheKey(interp, in)}
		c.rememberLocked(interp+"\x00"+in.Type, pc) // failures too, for this run only
		if in.Error != "" || pc.Key == "" || c.cacheDir == "" {
			continue
		}
		file := pythonCacheFile(c.cacheDir, interp, in.Type)
		if data, err := json.Marshal(pc); err == nil && os.MkdirAll(c.cacheDir, 0o700) == nil {
			tmp := file + ".tmp"
			if os.WriteFile(tmp, data, 0o600) == nil {
				_ = os.Rename(tmp, file)
			}
		}
	}
	return nil
}

// cacheKey is what must be unchanged for a cached answer to hold: the
// interpreter and the distribution's RECORD (or the class's module).
func cacheKey(interp string, in inspected) string {
	f := in.Record
	if f == "" {
		f = in.Source
	}
	k := stamp(f)
	if k == "" {
		return ""
	}
	return stamp(interp) + "\n" + k
}

// RunPyhost runs `python -m jumpwire_pyhost ARGS...` and decodes its JSON answer.
func RunPyhost(ctx context.Context, interp string, args ...string) (*inspectOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, interp, append([]string{"-m", PyhostModule}, args...)...)
	cmd.Env = PythonEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out inspectOutput
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr == nil && out.Pyhost != "" {
		return &out, nil
	}
	said := strings.TrimSpace(stderr.String())
	if i := strings.LastIndexByte(said, '\n'); i >= 0 {
		said = said[i+1:]
	}
	if strings.Contains(said, "No module named "+PyhostModule) {
		return nil, fmt.Errorf("%s has no jumpwire Python plugin host: pip install jumpwire-pyhost "+
			"(from this repository: make venv, then --python .venv)", interp)
	}
	if err == nil {
		err = errors.New("no answer")
	}
	return nil, fmt.Errorf("%s -m %s %s: %w: %s", interp, PyhostModule, args[0], err, said)
}

// PythonEnv is the environment of the Python processes the exporter runs:
// none of the exporter's but what an interpreter and a driver's commands
// need (PATH, HOME, locale, temp and PYTHONPATH, for classes loaded from a
// directory).
func PythonEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func pythonEntry(interp string, in inspected) (*Entry, error) {
	dt := &pluginv1.DriverType{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(in.Driver, dt); err != nil {
		return nil, fmt.Errorf("plugins: %s describing %s: %w", interp, in.Type, err)
	}
	sum := in.SHA256
	if sum == "" { // a class outside any distribution: the hash of its module
		if s, _, err := hashFile(context.Background(), in.Source); err == nil {
			sum = s
		}
	}
	return &Entry{
		Binary: interp,
		SHA256: sum,
		Info:   &pluginv1.DescribeResponse{SdkVersion: "pyhost", Version: in.Version, Types: []*pluginv1.DriverType{dt}},
		Python: &Python{Interpreter: interp, Type: in.Type, Package: in.Package, Version: in.Version},
	}, nil
}

// PythonEntries lists the driver classes the configured interpreter's
// installed packages announce (their jumpstarter.drivers entry points), for
// `jw plugins list`. It is nil, with the reason, when the interpreter cannot
// be asked.
func (c *Catalog) PythonEntries(ctx context.Context) ([]*Entry, error) {
	interp, err := resolvePython(c.python)
	if err != nil {
		return nil, err
	}
	out, err := RunPyhost(ctx, interp, "list")
	if err != nil {
		return nil, err
	}
	var entries []*Entry
	for _, in := range out.Types {
		if in.Error != "" {
			continue
		}
		if e, err := pythonEntry(interp, in); err == nil {
			entries = append(entries, e)
		}
	}
	return entries, nil
}
