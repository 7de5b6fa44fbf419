package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestRestartOutsideWindow: a crash that has already left the crash window
// when its restart is computed (a supervisor stalled longer than the
// window) restarts normally rather than panicking on a negative backoff.
func TestRestartOutsideWindow(t *testing.T) {
	bin := testbin.Build(t, "./drivers/power/cmd/jumpwire-driver-power")
	s, err := host.Supervise(t.Context(), host.Spec{Binary: bin, Type: "power", Name: "p", Path: "p", Config: &structpb.Struct{}},
		host.LaunchOptions{}, host.Policy{Window: time.Nanosecond, InitialBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	for range 3 {
		pid := s.Pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The call waits for the restart.
		if _, err := s.Call(t.Context(), "on", nil); err != nil {
			t.Fatalf("call after kill: %v", err)
		}
		if s.Pid() == pid {
			t.Fatal("not restarted")
		}
	}
	if h := s.Health(); h.Restarts != 3 || h.State != host.Running {
		t.Errorf("health %+v", h)
	}
}

// TestStopWaitsForTheReplacedProcess: a driver stopped while a replaced
// process still drains (a call holds it) leaves nothing behind: Stop ends
// the drain and returns once the old process is gone too.
func TestStopWaitsForTheReplacedProcess(t *testing.T) {
	bin := testbin.Build(t, "./drivers/power/cmd/jumpwire-driver-power")
	cfg, err := structpb.NewStruct(map[string]any{"readings": 1000, "interval": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	spec := host.Spec{Binary: bin, Type: "power", Name: "p", Path: "p", Config: cfg}
	s, err := host.Supervise(t.Context(), spec, host.LaunchOptions{}, host.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	old := s.Pid()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	go func() {
		for _, err := range s.StreamingCall(ctx, "read", nil) {
			if err != nil {
				return
			}
			select {
			case <-started:
			default:
				close(started)
			}
		}
	}()
	<-started // a call is in flight on the old process
	if err := s.Swap(t.Context(), spec, host.SwapOptions{Drain: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if s.Pid() == old {
		t.Fatal("not swapped")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alive(old) {
		t.Errorf("Stop returned while the replaced process %d still ran", old)
	}
}

// TestSuccessorNotReset: within a lease, a successor process (after a
// crash, or a swap, exclusive or not) is configured but not Reset, so the
// device keeps the state the lease gave it; the retired process is Closed.
func TestSuccessorNotReset(t *testing.T) {
	bin := testPlugin(t, "faulty")
	logPath := filepath.Join(t.TempDir(), "lifecycle")
	cfg, err := structpb.NewStruct(map[string]any{"lifecycle_log": logPath})
	if err != nil {
		t.Fatal(err)
	}
	spec := host.Spec{Binary: bin, Type: "faulty", Name: "faulty", Path: "dut.faulty", Config: cfg}
	s, err := host.Supervise(t.Context(), spec, host.LaunchOptions{Logger: testLogger(t)}, host.Policy{InitialBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop(context.Background())
		}
		waitGone(t, "the faulty plugin", func() []int { return running(bin) })
	}()
	want := []string{fmt.Sprintf("reset %d", s.Pid())}
	check := func(step string) {
		t.Helper()
		if got := readLifecycle(t, logPath); !slices.Equal(got, want) {
			t.Fatalf("after %s the driver's Reset and Close calls were %q, want %q", step, got, want)
		}
	}
	check("the first start")

	pid := s.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Call(t.Context(), "ok", nil); err != nil { // waits for the restart
		t.Fatalf("call after the crash: %v", err)
	}
	if s.Pid() == pid {
		t.Fatal("the driver was not restarted")
	}
	check("a crash and restart") // the killed process had no chance to Close

	for _, exclusive := range []bool{false, true} {
		old := s.Pid()
		if err := s.Swap(t.Context(), spec, host.SwapOptions{Exclusive: exclusive}); err != nil {
			t.Fatalf("swap (exclusive %v): %v", exclusive, err)
		}
		if _, err := s.Call(t.Context(), "ok", nil); err != nil {
			t.Fatalf("call after the swap: %v", err)
		}
		want = append(want, fmt.Sprintf("close %d", old))
		waitFor(t, "the swapped-out process to close", func() bool { return len(readLifecycle(t, logPath)) >= len(want) })
		check(fmt.Sprintf("a swap (exclusive %v)", exclusive))
	}

	last := s.Pid()
	stopped = true
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want = append(want, fmt.Sprintf("close %d", last))
	check("Stop")
}

// readLifecycle returns the lines of the faulty driver's lifecycle log.
func readLifecycle(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return slices.DeleteFunc(strings.Split(string(b), "\n"), func(s string) bool { return s == "" })
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
