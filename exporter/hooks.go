package exporter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/jumpwire-dev/jumpwire/exporter/config"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// hookKind names a lease hook for messages, logs and statuses.
type hookKind struct {
	name            string // as in the config: beforeLease, afterLease
	source          jumpstarterv1.LogSource
	running, failed jumpstarterv1.ExporterStatus
}

var (
	beforeLease = hookKind{"beforeLease", jumpstarterv1.LogSource_LOG_SOURCE_BEFORE_LEASE_HOOK,
		jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK_FAILED}
	afterLease = hookKind{"afterLease", jumpstarterv1.LogSource_LOG_SOURCE_AFTER_LEASE_HOOK,
		jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AFTER_LEASE_HOOK, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AFTER_LEASE_HOOK_FAILED}
)

// runHook runs a lease hook to its end: under a pseudo-terminal (scripts
// that check for a terminal behave as they would for a person), with its
// own socket in JUMPSTARTER_HOST so that `jw power on` (or upstream's `j power
// on`) inside it reaches this exporter (see ClientEnv). Its
// output is logged and streamed to LogStream clients with the hook's
// source. At its timeout it is killed with everything it started.
func (e *Exporter) runHook(ctx context.Context, kind hookKind, h *config.Hook) error {
	dir, err := os.MkdirTemp("", "jumpwire-hook-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "exporter.sock")
	lis, err := Listen("unix://" + sock)
	if err != nil {
		return err
	}
	srv := e.newServer(lis, false)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	cmd := exec.Command(h.Exec, hookArgs(h.Script)...)
	cmd.Env = ClientEnv(sock)
	if cfgDir := filepath.Dir(e.cfg.File); cfgDir != "" {
		cmd.Dir = cfgDir
	}
	e.logger.Info("running lease hook", "hook", kind.name)
	tty, err := pty.Start(cmd) // a new session: the hook's pid is its process group
	if err != nil {
		return fmt.Errorf("%s hook: cannot run %s: %w", kind.name, h.Exec, err)
	}
	output := make(chan struct{})
	go func() {
		defer close(output)
		sc := bufio.NewScanner(tty)
		for sc.Scan() {
			e.hookLine(kind, strings.TrimRight(sc.Text(), "\r"))
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var timedOut bool
	select {
	case err = <-waited:
	case <-ctx.Done():
		timedOut = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-waited
	}
	// Children that kept the terminal open would keep the output going: the
	// hook is over, and so are they.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	tty.Close()
	<-output
	switch {
	case timedOut:
		return fmt.Errorf("%s hook timed out after %s and was killed", kind.name, h.Timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s hook failed: %s", kind.name, ee.String())
		}
		return fmt.Errorf("%s hook: %w", kind.name, err)
	}
	e.logger.Info("lease hook done", "hook", kind.name)
	return nil
}

// hookArgs runs script as a file when it names one, else inline.
func hookArgs(script string) []string {
	if !strings.ContainsAny(script, "\n;&|") {
		if fi, err := os.Stat(strings.TrimSpace(script)); err == nil && fi.Mode().IsRegular() {
			return []string{strings.TrimSpace(script)}
		}
	}
	return []string{"-c", script}
}

// hookLine logs one line of a hook's output and streams it to clients.
func (e *Exporter) hookLine(kind hookKind, line string) {
	e.logger.Info(line, "hook", kind.name)
	src := kind.source
	e.logs.publish(&jumpstarterv1.LogStreamResponse{
		Severity:         "INFO",
		Message:          line,
		Source:           &src,
		Timestamp:        timestamppb.New(time.Now()),
		StructuredFields: map[string]string{"hook": kind.name},
	})
}
