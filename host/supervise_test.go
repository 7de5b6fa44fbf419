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
