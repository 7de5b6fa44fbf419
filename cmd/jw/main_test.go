package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

// result is what a user sees from one jw invocation.
type result struct {
	stdout, stderr string
	code           int
}

// jw runs the CLI in-process with JUMPSTARTER_HOST set to sock ("" leaves it empty).
func jw(t *testing.T, sock string, args ...string) result {
	t.Helper()
	return jwContext(t.Context(), t, sock, args...)
}

func jwContext(ctx context.Context, t *testing.T, sock string, args ...string) result {
	t.Helper()
	t.Setenv(client.HostEnv, sock)
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

// check compares the output with what the user should see; stderr is compared up to its first
// line when wantUsage is set (the usage that follows depends on the flags' defaults).
func (r result) check(t *testing.T, stdout, stderr string, code int) {
	t.Helper()
	if r.stdout != stdout {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, stdout)
	}
	if r.stderr != stderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, stderr)
	}
	if r.code != code {
		t.Errorf("exit code %d, want %d", r.code, code)
	}
}

// checkUsage checks a usage error: the error line, then a blank line and the command's usage.
func (r result) checkUsage(t *testing.T, line, usage string) {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	first, rest, _ := strings.Cut(r.stderr, "\n")
	if first != line {
		t.Errorf("error line %q, want %q", first, line)
	}
	if !strings.HasPrefix(rest, "\nUsage:\n  "+usage+"\n") {
		t.Errorf("no usage for %q after the error line:\n%s", usage, rest)
	}
	if r.code != 1 {
		t.Errorf("exit code %d, want 1", r.code)
	}
}

func TestNoArgsShowsHelp(t *testing.T) {
	r := jw(t, "")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "jw power on") {
		t.Errorf("jw without arguments: code %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
}

func TestConnectionErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "x.sock")
	t.Run("no host", func(t *testing.T) {
		jw(t, "", "power", "on").check(t, "",
			"jw: no exporter: JUMPSTARTER_HOST is not set (run inside \"jw shell\" or pass --host)\n", 1)
	})
	t.Run("socket missing", func(t *testing.T) {
		jw(t, "", "--host", missing, "tree").check(t, "",
			"jw: cannot reach exporter at "+missing+": no such file (is it running? start one with \"jw shell -c FILE\")\n", 1)
	})
	t.Run("socket missing, from the environment", func(t *testing.T) {
		jw(t, "unix://"+missing, "status").check(t, "",
			"jw: cannot reach exporter at "+missing+": no such file (is it running? start one with \"jw shell -c FILE\")\n", 1)
	})
	t.Run("--host wins over the environment", func(t *testing.T) {
		sock := fakeexporter.Lab().Start(t)
		jw(t, missing, "--host="+sock, "status").check(t, "LEASE_READY (version 1)\n", "", 0)
	})
}

func TestUsageErrors(t *testing.T) {
	sock := fakeexporter.Lab().Start(t)
	jw(t, sock, "call", "power").checkUsage(t,
		`jw: call needs a driver PATH and a METHOD (PATH "." is the root)`, "jw call PATH METHOD [ARG...] [flags]")
	jw(t, sock, "-o", "yaml", "tree").checkUsage(t, `jw: invalid --output "yaml" (want text or json)`, "jw tree [flags]")
	jw(t, sock, "status", "extra").checkUsage(t, `jw: unknown command "extra" for "jw status"`, "jw status [flags]")
	jw(t, sock, "--bogus").checkUsage(t, "jw: unknown flag: --bogus", "jw [PATH...] [METHOD [ARG...]] [flags]")
	// A negative number is a flag unless it follows "--".
	jw(t, sock, "call", "serial", "set_dtr", "-1").checkUsage(t,
		"jw: unknown shorthand flag: '1' in -1", "jw call PATH METHOD [ARG...] [flags]")
}

func TestInterrupted(t *testing.T) {
	started := make(chan struct{})
	fake := fakeexporter.Lab()
	fake.Root.Methods = []fakeexporter.Method{{Name: "hang", Call: func(ctx context.Context, _ []any) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}}
	sock := fake.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan result)
	t.Setenv(client.HostEnv, sock)
	go func() {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"hang"}, &out, &errOut)
		done <- result{out.String(), errOut.String(), code}
	}()
	<-started
	cancel()
	(<-done).check(t, "", "", 130)
}
