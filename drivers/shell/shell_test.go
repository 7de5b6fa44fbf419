package shell_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/drivers/shell"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// result is what upstream's ShellClient makes of a call_method stream.
type result struct {
	stdout, stderr string
	code           any
	tuples         int
}

func collect(t *testing.T, d *sdktest.Instance, method string, env map[string]string, args ...any) (result, error) {
	t.Helper()
	var r result
	for v, err := range d.StreamingCall(t.Context(), "call_method", append([]any{method, env}, args...)...) {
		if err != nil {
			return r, err
		}
		tup, ok := v.([]any)
		if !ok || len(tup) != 3 {
			t.Fatalf("call_method yielded %#v, want [stdout, stderr, returncode]", v)
		}
		if r.code != nil {
			t.Fatalf("call_method yielded %v after the return code %v", tup, r.code)
		}
		r.stdout += tup[0].(string)
		r.stderr += tup[1].(string)
		r.code = tup[2]
		r.tuples++
	}
	return r, nil
}

func start(t *testing.T, methods map[string]any, extra map[string]any) *sdktest.Instance {
	cfg := map[string]any{"methods": methods, "shell": []string{"sh", "-c"}}
	for k, v := range extra {
		cfg[k] = v
	}
	return sdktest.Start(t, shell.Type, cfg)
}

func TestCallMethod(t *testing.T) {
	d := start(t, map[string]any{
		"greet": map[string]any{"command": `echo "hello $1 from $0, $WHO"; echo warn >&2; exit 3`, "description": "Say hello"},
		"true":  "true",
	}, nil)
	got, err := d.Call(t.Context(), "get_methods")
	if err != nil || len(got.([]any)) != 2 || got.([]any)[0] != "greet" || got.([]any)[1] != "true" {
		t.Fatalf("get_methods = %v, %v; want [greet true]", got, err)
	}
	r, err := collect(t, d, "greet", map[string]string{"WHO": "me"}, "world")
	if err != nil {
		t.Fatal(err)
	}
	if r.stdout != "hello world from greet, me\n" || r.stderr != "warn\n" || r.code != 3.0 {
		t.Fatalf("greet gave %+v; want stdout \"hello world from greet, me\\n\", stderr \"warn\\n\", code 3", r)
	}
	if r, err := collect(t, d, "true", nil); err != nil || r.code != 0.0 {
		t.Fatalf("true gave %+v, %v; want code 0", r, err)
	}
	if d.Configured.Methods[2].Name != "greet" || d.Configured.Methods[2].Description != "Say hello" {
		t.Fatalf("configured methods %v: want greet exported with its description", d.Configured.Methods)
	}
}

// TestOwnName runs a configured method under its own name, as jw does.
func TestOwnName(t *testing.T) {
	d := start(t, map[string]any{"add": `echo $(($1 + $2))`}, nil)
	var out string
	for v, err := range d.StreamingCall(t.Context(), "add", "2", "3") {
		if err != nil {
			t.Fatal(err)
		}
		out += v.([]any)[0].(string)
	}
	if out != "5\n" {
		t.Fatalf("add 2 3 printed %q, want \"5\\n\"", out)
	}
}

// TestStreamsAsItRuns reads the first line before the command has ended.
func TestStreamsAsItRuns(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	d := start(t, map[string]any{"wait": `echo started; while [ ! -e "$1" ]; do sleep 0.02; done; echo done`}, nil)
	var out string
	for v, err := range d.StreamingCall(t.Context(), "call_method", "wait", map[string]string{}, gate) {
		if err != nil {
			t.Fatal(err)
		}
		tup := v.([]any)
		out += tup[0].(string)
		if out == "started\n" {
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out != "started\ndone\n" {
		t.Fatalf("output %q; want started, then done after the gate opened", out)
	}
}

// alive reports whether pid still exists (and is not a zombie of ours).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, err2 := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && err2 == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTimeoutKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	d := start(t, map[string]any{
		"hang": map[string]any{"command": `sleep 300 & echo $! > "$1"; trap '' TERM; wait`, "timeout": "200ms"},
	}, map[string]any{"grace": "100ms"})
	r, err := collect(t, d, "hang", nil, pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != float64(shell.TimeoutCode) || !strings.Contains(r.stderr, "Timeout expired while running hang") {
		t.Fatalf("hang gave %+v; want code %d and a timeout message", r, shell.TimeoutCode)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestLeftoversDieWithTheRun(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	d := start(t, map[string]any{"bg": `sleep 300 >/dev/null 2>&1 & echo $! > "$1"`}, nil)
	r, err := collect(t, d, "bg", nil, pidFile)
	if err != nil || r.code != 0.0 {
		t.Fatalf("bg gave %+v, %v; want code 0", r, err)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestClientGoneKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	d := start(t, map[string]any{"long": `echo $$ > "$1"; echo running; sleep 300`}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for v, err := range d.StreamingCall(ctx, "call_method", "long", nil, pidFile) {
		if err != nil {
			t.Fatal(err)
		}
		if v.([]any)[0] == "running\n" {
			break
		}
	}
	waitGone(t, readPid(t, pidFile))
}

func TestRefusals(t *testing.T) {
	d := start(t, map[string]any{"echo": `echo "$@"`}, nil)
	for _, tc := range []struct {
		name   string
		method string
		env    map[string]string
		args   []any
		code   codes.Code
		msg    string
	}{
		{"unknown method", "nope", nil, nil, codes.NotFound, `no method "nope"; configured: echo`},
		{"blocked variable", "echo", map[string]string{"LD_PRELOAD": "/tmp/x.so"}, nil, codes.InvalidArgument, "LD_PRELOAD may not be set"},
		{"blocked prefix", "echo", map[string]string{"BASH_FUNC_x%%": "() { :; }"}, nil, codes.InvalidArgument, "not an identifier"},
		{"not an identifier", "echo", map[string]string{"A-B": "1"}, nil, codes.InvalidArgument, "not an identifier"},
		{"argument not a string", "echo", nil, []any{5}, codes.InvalidArgument, "args[0]: expected string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collect(t, d, tc.method, tc.env, tc.args...)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v; want %v containing %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no methods", map[string]any{}, "methods: configure at least one method"},
		{"reserved name", map[string]any{"methods": map[string]any{"call_method": "true"}}, "methods.call_method: \"call_method\" is a method of the driver itself"},
		{"empty command", map[string]any{"methods": map[string]any{"x": " "}}, "methods.x: the command is empty"},
		{"unknown key", map[string]any{"methods": map[string]any{"x": map[string]any{"command": "true", "timout": 3}}}, "timout"},
		{"bad timeout", map[string]any{"methods": map[string]any{"x": map[string]any{"command": "true", "timeout": "soon"}}}, "timeout"},
		{"no shell", map[string]any{"methods": map[string]any{"x": "true"}, "shell": []string{}}, "shell: must name an interpreter"},
		{"missing cwd", map[string]any{"methods": map[string]any{"x": "true"}, "cwd": "/nonexistent/dir"}, "cwd: \"/nonexistent/dir\" is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sdktest.Configure(t, shell.Type, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
