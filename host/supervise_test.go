package host_test

import (
	"context"
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
