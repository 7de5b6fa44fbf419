// Package shell runs commands configured in the exporter file on the
// exporter's host, matching the upstream Jumpstarter shell driver: clients
// list the methods with get_methods() and run one with call_method(method,
// env, *args), which streams [stdout, stderr, returncode] as the command
// runs (returncode is null until the command has ended). The binary
// jumpwire-driver-shell serves it.
//
// Each configured method is also exported under its own name, taking the
// script's arguments, so `jw PATH METHOD ARG...` runs it directly.
//
// Every run gets its own process group. When the command ends, whatever it
// left running in that group is killed; when it outlives its timeout, or the
// client goes away, the whole group gets SIGTERM and, after a grace period,
// SIGKILL. Nothing a call started survives the call.
package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Type is the driver type this package provides.
var Type = sdk.Type{
	Name:        "shell",
	Aliases:     []string{"jumpstarter_driver_shell.driver.Shell"},
	Client:      "jumpstarter_driver_shell.client.ShellClient",
	Description: "Shell commands on the exporter's host",
	New:         sdk.Factory(New),
}

// TimeoutCode is the return code a run reports when it outlived its
// timeout, as upstream's driver does.
const TimeoutCode = 199

// Config configures a shell driver with the keys of upstream's configs.
type Config struct {
	Methods map[string]MethodConfig `json:"methods" doc:"method name -> a command, or {command, description, timeout} (required)"`
	Shell   []string                `json:"shell" doc:"the interpreter and its flag that takes the script (default [bash, -c])"`
	Timeout time.Duration           `json:"timeout" doc:"time limit of a run unless the method sets its own, e.g. 30s (default 300s)"`
	Cwd     string                  `json:"cwd" doc:"working directory of every run (default: the exporter's)"`
	Grace   time.Duration           `json:"grace" doc:"how long a timed-out run has between SIGTERM and SIGKILL (default 5s)"`
	Env     map[string]string       `json:"env" doc:"environment of every run (default PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin); clients add to it with call_method's env"`
}

// DefaultPath is the PATH of commands unless the config sets one: the
// exporter starts plugins with an empty environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SetDefaults fills in the defaults before the config is decoded.
func (c *Config) SetDefaults() {
	c.Shell, c.Timeout, c.Grace = []string{"bash", "-c"}, 300*time.Second, 5*time.Second
}

// MethodConfig is one configured method: in YAML either the command alone
// or a mapping with command, description and timeout (seconds or a
// duration such as "90s").
type MethodConfig struct {
	Command     string
	Description string
	Timeout     time.Duration // zero: the driver's timeout
}

// UnmarshalJSON accepts a command string or a {command, description,
// timeout} object; other keys are errors.
func (m *MethodConfig) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &m.Command); err == nil {
		return nil
	}
	var obj struct {
		Command     *string         `json:"command"`
		Description string          `json:"description"`
		Timeout     json.RawMessage `json:"timeout"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("expected a command or a mapping with command, description and timeout: %w", err)
	}
	if obj.Command == nil {
		return fmt.Errorf("the mapping has no command")
	}
	m.Command, m.Description = *obj.Command, obj.Description
	if len(obj.Timeout) == 0 || string(obj.Timeout) == "null" {
		return nil
	}
	var secs float64
	if err := json.Unmarshal(obj.Timeout, &secs); err == nil {
		m.Timeout = time.Duration(secs * float64(time.Second))
	} else {
		var s string
		if err := json.Unmarshal(obj.Timeout, &s); err != nil {
			return fmt.Errorf("timeout: expected seconds or a duration such as \"90s\", got %s", obj.Timeout)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		m.Timeout = d
	}
	if m.Timeout <= 0 {
		return fmt.Errorf("timeout: must be positive, got %s", obj.Timeout)
	}
	return nil
}

// Shell runs configured commands.
type Shell struct {
	sdk.Base
	cfg   Config
	names []string // the configured methods, sorted
}

// Interface guards
var _ sdk.Driver = (*Shell)(nil)

// reserved are the names of the driver's own methods.
var reserved = []string{"get_methods", "call_method"}

// New builds a shell driver from its config.
func New(cfg Config) (*Shell, error) {
	switch {
	case len(cfg.Methods) == 0:
		return nil, sdk.InvalidConfig("methods", "configure at least one method, e.g. {hello: \"echo hello\"}")
	case len(cfg.Shell) == 0 || cfg.Shell[0] == "":
		return nil, sdk.InvalidConfig("shell", "must name an interpreter, e.g. [bash, -c]")
	case cfg.Timeout <= 0:
		return nil, sdk.InvalidConfig("timeout", "must be positive, got %v", cfg.Timeout)
	case cfg.Grace < 0:
		return nil, sdk.InvalidConfig("grace", "must not be negative, got %v", cfg.Grace)
	}
	for name, m := range cfg.Methods {
		switch {
		case slices.Contains(reserved, name):
			return nil, sdk.InvalidConfig("methods."+name, "%q is a method of the driver itself; choose another name", name)
		case name == "" || strings.ContainsAny(name, " \t\n/."):
			return nil, sdk.InvalidConfig("methods."+name, "a method name must be a word without spaces, dots or slashes")
		case strings.TrimSpace(m.Command) == "":
			return nil, sdk.InvalidConfig("methods."+name, "the command is empty")
		}
	}
	if cfg.Cwd != "" {
		if st, err := os.Stat(cfg.Cwd); err != nil || !st.IsDir() {
			return nil, sdk.InvalidConfig("cwd", "%q is not a directory", cfg.Cwd)
		}
	}
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	for k := range cfg.Env {
		if !isIdentifier(k) {
			return nil, sdk.InvalidConfig("env."+k, "%q is not a variable name", k)
		}
	}
	if _, ok := cfg.Env["PATH"]; !ok && os.Getenv("PATH") == "" {
		cfg.Env["PATH"] = DefaultPath
	}
	// The interpreter is found on the commands' PATH.
	if p, ok := cfg.Env["PATH"]; ok {
		os.Setenv("PATH", p)
	}
	return &Shell{cfg: cfg, names: slices.Sorted(maps.Keys(cfg.Methods))}, nil
}

// Exports lists the methods clients call: upstream's two, and each
// configured method under its own name.
func (s *Shell) Exports() []sdk.Method {
	ms := []sdk.Method{
		sdk.Export("get_methods", s.GetMethods, "List the configured methods"),
		sdk.Export("call_method", s.CallMethod, "Run a configured method with environment variables and arguments, streaming [stdout, stderr, returncode]",
			sdk.Params("method", "env", "args")),
	}
	for _, name := range s.names {
		desc := s.cfg.Methods[name].Description
		if desc == "" {
			desc = "Run " + strconv.Quote(s.cfg.Methods[name].Command)
		}
		ms = append(ms, sdk.Export(name, func(ctx context.Context, args ...string) iter.Seq2[[]any, error] {
			return s.CallMethod(ctx, name, nil, args...)
		}, desc, sdk.Params("args")))
	}
	return ms
}

// GetMethods lists the configured methods.
func (s *Shell) GetMethods(context.Context) ([]string, error) {
	return slices.Clone(s.names), nil
}

// CallMethod runs method with env added to the exporter's environment and
// args as the script's $1, $2, ...; it yields [stdout, stderr, null] as
// output arrives and finally ["", "", returncode]. A run killed by a signal
// returns minus the signal's number; a run that timed out ends with its
// message on stderr and TimeoutCode.
func (s *Shell) CallMethod(ctx context.Context, method string, env map[string]string, args ...string) iter.Seq2[[]any, error] {
	return func(yield func([]any, error) bool) {
		m, ok := s.cfg.Methods[method]
		if !ok {
			yield(nil, fmt.Errorf("%w: shell: no method %q; configured: %s", sdk.ErrNotFound, method, strings.Join(s.names, ", ")))
			return
		}
		if err := checkEnv(env); err != nil {
			yield(nil, err)
			return
		}
		timeout := m.Timeout
		if timeout == 0 {
			timeout = s.cfg.Timeout
		}
		argv := append(slices.Clone(s.cfg.Shell), m.Command, method)
		argv = append(argv, args...)
		s.Logger().Info("run", "method", method, "args", args, "timeout", timeout)
		all := maps.Clone(s.cfg.Env)
		maps.Copy(all, env)
		r := &run{method: method, argv: argv, env: all, dir: s.cfg.Cwd, timeout: timeout, grace: s.cfg.Grace}
		for out, err := range r.start(ctx) {
			if err != nil {
				yield(nil, fmt.Errorf("shell: %s: %w", method, err))
				return
			}
			if !yield(out.tuple(), nil) {
				return
			}
		}
	}
}

// blockedEnv are variables a client may not set: they would let it run
// other code than the configured command (as upstream blocks them).
var blockedEnv = []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "PATH", "PYTHONPATH", "BASH_ENV", "ENV", "KUBECONFIG", "HOME", "IFS"}

// checkEnv refuses variable names that are not identifiers or are blocked.
func checkEnv(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !isIdentifier(k) {
			return fmt.Errorf("%w: shell: environment variable name %q is not an identifier", sdk.ErrInvalidArgument, k)
		}
		if slices.Contains(blockedEnv, k) || strings.HasPrefix(k, "LD_") || strings.HasPrefix(k, "BASH_FUNC_") {
			return fmt.Errorf("%w: shell: environment variable %s may not be set by clients", sdk.ErrInvalidArgument, k)
		}
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
