package exporter_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// jwOnPath builds jw and puts it first on PATH, as it is for an operator.
func jwOnPath(t *testing.T) {
	t.Helper()
	jw := testbin.Build(t, "./cmd/jw")
	t.Setenv("PATH", filepath.Dir(jw)+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// serveHooks starts an exporter without waiting for its lease to be ready;
// the channel receives Serve's result.
func serveHooks(t *testing.T, yaml string) (*exporter.Exporter, jumpstarterv1.ExporterServiceClient, <-chan error) {
	t.Helper()
	rx := start(t, yaml, nil)
	return rx.e, rx.c, rx.served
}

func waitReady(t *testing.T, e *exporter.Exporter) *jumpstarterv1.GetStatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := e.WaitReady(ctx)
	if err != nil {
		t.Fatalf("WaitReady: %v (status %v)", err, st)
	}
	return st
}

// TestHooksDriveDrivers: a beforeLease hook that runs `jw power on` and an
// afterLease hook that runs `jw power off` work; their output reaches
// LogStream with their sources. A hook sees the environment upstream's hooks
// get: JMP_DRIVERS_ALLOW=UNSAFE, and the socket as a bare path.
func TestHooksDriveDrivers(t *testing.T) {
	jwOnPath(t)
	e, c, _ := serveHooks(t, header+`hooks:
  beforeLease: {script: "echo env: $JMP_DRIVERS_ALLOW [${JUMPSTARTER_HOST%%/*}] && jw power on && echo powered: $(jw power state)", timeout: 30}
  afterLease: {script: "jw power off && echo after: $(jw power state)", timeout: 30}
export:
  power: {type: power}
`)
	logs, err := c.LogStream(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitReady(t, e); st.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY {
		t.Fatalf("status after the before-lease hook: %v", st)
	}
	power := uuidOf(t, c, "power")
	if v, err := call(t, c, power, "state"); err != nil || v != true {
		t.Errorf("state after the before-lease hook = %v, %v; want true", v, err)
	}
	r, err := c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{})
	if err != nil || !r.Success {
		t.Fatalf("EndSession: %v, %v", r, err)
	}
	want := map[string]jumpstarterv1.LogSource{
		"env: UNSAFE []": jumpstarterv1.LogSource_LOG_SOURCE_BEFORE_LEASE_HOOK,
		"powered: true":  jumpstarterv1.LogSource_LOG_SOURCE_BEFORE_LEASE_HOOK,
		"after: false":   jumpstarterv1.LogSource_LOG_SOURCE_AFTER_LEASE_HOOK,
	}
	for len(want) > 0 {
		m, err := logs.Recv()
		if err != nil {
			t.Fatalf("log stream: %v (still waiting for %v)", err, want)
		}
		if src, ok := want[m.Message]; ok {
			if m.GetSource() != src {
				t.Errorf("%q came with source %v, want %v", m.Message, m.GetSource(), src)
			}
			delete(want, m.Message)
		}
	}
}

// TestHookTimeout: a hook that sleeps past its timeout is killed with its
// children and handled as onFailure says.
func TestHookTimeout(t *testing.T) {
	const sleeper = "sleep 31.25"
	hung := func(onFailure string) string {
		return header + `hooks:
  beforeLease: {script: "` + sleeper + ` & ` + sleeper + `", timeout: 1, onFailure: ` + onFailure + `}
export:
  power: {type: power}
`
	}
	left := func() bool {
		out, _ := os.ReadDir("/proc")
		for _, d := range out {
			b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
			if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), sleeper) {
				return true
			}
		}
		return false
	}
	timedOut := "beforeLease hook timed out after 1s and was killed (onFailure: "

	t.Run("warn", func(t *testing.T) {
		e, c, _ := serveHooks(t, hung("warn"))
		if st := waitReady(t, e); st.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY {
			t.Errorf("status %v, want LEASE_READY after a failed hook with onFailure: warn", st)
		}
		if _, err := call(t, c, uuidOf(t, c, "power"), "on"); err != nil {
			t.Error(err)
		}
		if left() {
			t.Error("the hook's children outlived its timeout")
		}
	})
	t.Run("endLease", func(t *testing.T) {
		e, c, _ := serveHooks(t, hung("endLease"))
		st := waitReady(t, e)
		if st.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK_FAILED || !strings.HasPrefix(st.GetMessage(), timedOut+"endLease)") {
			t.Errorf("status %v %q", st.Status, st.GetMessage())
		}
		_, err := call(t, c, uuidOf(t, c, "power"), "on")
		want := "driver calls are refused while the exporter is BEFORE_LEASE_HOOK_FAILED: " + timedOut + "endLease)"
		if s := status.Convert(err); s.Code() != codes.FailedPrecondition || s.Message() != want {
			t.Errorf("call: %v %q, want FAILED_PRECONDITION %q", s.Code(), s.Message(), want)
		}
	})
	t.Run("exit", func(t *testing.T) {
		_, _, done := serveHooks(t, hung("exit"))
		select {
		case err := <-done:
			want := "beforeLease hook timed out after 1s and was killed; the config says onFailure: exit"
			if err == nil || err.Error() != want {
				t.Errorf("Serve returned %v, want %q", err, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the exporter did not exit after the hook failed with onFailure: exit")
		}
	})
}

// TestCloseStopsTheBeforeLeaseHook: closing the exporter while its
// before-lease hook runs stops the hook; once Close returns nothing of it
// runs, and the status stays OFFLINE (a hook finishing after Close once
// set LEASE_READY again).
func TestCloseStopsTheBeforeLeaseHook(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "hook.pid")
	e, _, _ := serveHooks(t, header+`hooks:
  beforeLease: {script: "echo $$ > `+pidFile+`; exec sleep 32.5", timeout: 60}
export:
  power: {type: power}
`)
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(pidFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hook did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z") {
			t.Errorf("the hook (pid %d) still runs after Close returned", pid)
		}
	}
	if st, _ := e.Status(); st.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE {
		t.Errorf("status after Close: %v, want OFFLINE", st.Status)
	}
}
