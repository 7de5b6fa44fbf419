package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/session"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// driver is a faulty test driver at path whose Resets, Closes and sleeps
// go to a lifecycle log of its own.
type driver struct {
	spec host.Spec
	log  string
}

func faulty(t *testing.T, path string) driver {
	t.Helper()
	log := filepath.Join(t.TempDir(), path+".log")
	cfg, err := structpb.NewStruct(map[string]any{"lifecycle_log": log})
	if err != nil {
		t.Fatal(err)
	}
	bin := testbin.Build(t, "./internal/testplugins/faulty")
	return driver{spec: host.Spec{Binary: bin, Type: "faulty", Name: path, Path: path, Config: cfg}, log: log}
}

// events lists the driver's lifecycle events in order, without pids.
func (d driver) events(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(d.log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if ev, _, ok := strings.Cut(line, " "); ok {
			out = append(out, ev)
		}
	}
	return out
}

// start starts a session of the drivers, by uuid (the path), ended when the
// test ends.
func start(t *testing.T, o session.Options, ds ...driver) *session.Session {
	t.Helper()
	specs := map[string]host.Spec{}
	for _, d := range ds {
		specs[d.spec.Path] = d.spec
	}
	o.Policy.InitialBackoff = time.Millisecond
	s, err := session.Start(t.Context(), specs, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.End(context.Background(), nil) })
	return s
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

// sleep starts a call of method sleep on uuid in the background, and waits
// until the driver is sleeping; the result arrives on the channel.
func sleep(t *testing.T, s *session.Session, d driver) <-chan error {
	t.Helper()
	n := slices.Index(d.events(t), "sleeping")
	done := make(chan error, 1)
	go func() {
		_, err := s.Call(context.Background(), d.spec.Path, "sleep", []*structpb.Value{structpb.NewNumberValue(60)})
		done <- err
	}()
	waitFor(t, d.spec.Path+" to sleep", func() bool {
		return slices.Index(d.events(t)[n+1:], "sleeping") >= 0
	})
	return done
}

func wantCode(t *testing.T, what string, err error, code codes.Code, substr string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), substr) {
		t.Fatalf("%s: got %v, want %s containing %q", what, err, code, substr)
	}
}

// TestRouting: calls reach the instance their uuid names; an unknown uuid
// is NOT_FOUND. (An alias is resolved to its target's uuid by the exporter's
// tree before a call reaches the session.)
func TestRouting(t *testing.T) {
	a, b := faulty(t, "a"), faulty(t, "b")
	s := start(t, session.Options{}, a, b)
	pids := s.Pids()
	if pids["a"] == pids["b"] || pids["a"] == 0 {
		t.Fatalf("pids %v: want a and b apart", pids)
	}
	for _, tc := range []struct {
		uuid string
		code codes.Code
		want string
	}{
		{"a", codes.OK, "ok"},
		{"b", codes.OK, "ok"},
		{"nobody", codes.NotFound, "no driver instance with uuid nobody"},
	} {
		t.Run(tc.uuid, func(t *testing.T) {
			v, err := s.Call(t.Context(), tc.uuid, "ok", nil)
			if tc.code != codes.OK {
				wantCode(t, "call", err, tc.code, tc.want)
				return
			}
			if err != nil || v.GetStringValue() != tc.want {
				t.Fatalf("call = %v, %v; want %q", v, err, tc.want)
			}
		})
	}
	// Each instance was Reset once, by its own process.
	for _, d := range []driver{a, b} {
		if ev := d.events(t); !slices.Equal(ev, []string{"reset"}) {
			t.Errorf("%s: events %v, want one reset", d.spec.Path, ev)
		}
	}
}

// TestLimits: past MaxCalls calls (or MaxStreams byte streams) in flight, a
// new one fails with RESOURCE_EXHAUSTED and the others go on; once one ends
// a new one is accepted.
func TestLimits(t *testing.T) {
	a := faulty(t, "a")
	s := start(t, session.Options{MaxCalls: 1, MaxStreams: 1}, a)

	t.Run("calls", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := s.Call(ctx, "a", "sleep", []*structpb.Value{structpb.NewNumberValue(60)})
			done <- err
		}()
		waitFor(t, "the call in flight", func() bool { c, _ := s.InFlight(); return c == 1 })
		_, err := s.Call(t.Context(), "a", "ok", nil)
		wantCode(t, "a second call", err, codes.ResourceExhausted, "1 calls in flight, its limit")
		var got []error
		for _, err := range s.StreamingCall(t.Context(), "a", "stream_panic", nil) {
			got = append(got, err)
		}
		if len(got) != 1 {
			t.Fatalf("a streaming call past the limit yielded %d times, want once", len(got))
		}
		wantCode(t, "a streaming call", got[0], codes.ResourceExhausted, "its limit")
		cancel()
		<-done
		waitFor(t, "the call to end", func() bool { c, _ := s.InFlight(); return c == 0 })
		if _, err := s.Call(t.Context(), "a", "ok", nil); err != nil {
			t.Fatalf("a call after the first ended: %v", err)
		}
	})

	t.Run("streams", func(t *testing.T) {
		st, _, release, err := s.Stream(t.Context(), "a", "echo")
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = s.Stream(t.Context(), "a", "echo")
		wantCode(t, "a second stream", err, codes.ResourceExhausted, "1 byte streams in flight, its limit")
		// The open stream still works, and calls are not byte streams.
		if err := st.SendMsg(protocol.Data([]byte("hi"))); err != nil {
			t.Fatal(err)
		}
		f := new(protocol.Frame)
		if err := st.RecvMsg(f); err != nil || string(f.Bytes()) != "hi" {
			t.Fatalf("echo: %q, %v", f.Bytes(), err)
		}
		if _, err := s.Call(t.Context(), "a", "ok", nil); err != nil {
			t.Fatalf("a call beside the stream: %v", err)
		}
		release()
		st2, _, release2, err := s.Stream(t.Context(), "a", "echo")
		if err != nil {
			t.Fatalf("a stream after the first was released: %v", err)
		}
		_ = st2.CloseSend()
		release2()
	})
}

// TestEnd: the session's end cancels what is in flight (with its cause),
// then calls each driver's Close, then stops the processes; later calls
// fail with the session's end; End is idempotent.
func TestEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		code  codes.Code
		want  string
	}{
		{"default cause", nil, codes.Unavailable, "the session ended"},
		{"given cause", status.Error(codes.Aborted, "lease released"), codes.Aborted, "lease released"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := faulty(t, "a"), faulty(t, "b")
			s := start(t, session.Options{}, a, b)
			pids := s.Pids()
			call := sleep(t, s, a)
			st, explain, release, err := s.Stream(t.Context(), "b", "echo")
			if err != nil {
				t.Fatal(err)
			}
			// As the exporter's relay does: read until the stream ends, then
			// release it (End waits for that).
			streamEnd := make(chan error, 1)
			go func() {
				defer release()
				for {
					if err := st.RecvMsg(new(protocol.Frame)); err != nil {
						streamEnd <- err
						return
					}
				}
			}()
			if err := s.End(t.Context(), tc.cause); err != nil {
				t.Fatalf("End: %v", err)
			}
			wantCode(t, "the call in flight", <-call, tc.code, tc.want)
			if err := <-streamEnd; errors.Is(err, io.EOF) {
				t.Fatalf("the stream after End: %v, want it cut off", err)
			} else {
				wantCode(t, "the stream", explain(err), tc.code, tc.want)
			}
			// The driver saw its call cancelled before its Close.
			if ev := a.events(t); !slices.Equal(ev, []string{"reset", "sleeping", "cancelled", "close"}) {
				t.Errorf("a's events %v, want reset, sleeping, cancelled, close", ev)
			}
			if ev := b.events(t); !slices.Equal(ev, []string{"reset", "close"}) {
				t.Errorf("b's events %v, want reset, close", ev)
			}
			for id, pid := range pids {
				if err := syscall.Kill(pid, 0); err == nil {
					t.Errorf("%s's process %d still runs after End", id, pid)
				}
			}
			_, err = s.Call(t.Context(), "a", "ok", nil)
			wantCode(t, "a call after End", err, tc.code, tc.want)
			if err := s.End(t.Context(), nil); err != nil {
				t.Errorf("a second End: %v", err)
			}
		})
	}
}

// TestCrashIsolated: one instance's crash fails its own call in flight, and
// neither the other instance nor its call in flight notices; the crashed one
// comes back, without a Reset, under the same uuid.
func TestCrashIsolated(t *testing.T) {
	a, b := faulty(t, "a"), faulty(t, "b")
	s := start(t, session.Options{}, a, b)
	bPid := s.Pids()["b"]
	call := sleep(t, s, b)
	_, err := s.Call(t.Context(), "a", "exit", []*structpb.Value{structpb.NewNumberValue(3)})
	wantCode(t, "a's exit", err, codes.Unavailable, "driver a (faulty) exited with status 3")
	if _, err := s.Call(t.Context(), "a", "ok", nil); err != nil {
		t.Fatalf("a call after a's restart: %v", err)
	}
	if h, _ := s.Health("a"); h.Restarts != 1 || h.State != host.Running {
		t.Errorf("a's health %+v, want running after 1 restart", h)
	}
	select {
	case err := <-call:
		t.Fatalf("b's call in flight ended with a's crash: %v", err)
	default:
	}
	if h, _ := s.Health("b"); h.Restarts != 0 || s.Pids()["b"] != bPid {
		t.Errorf("b was restarted: %+v", h)
	}
	if _, err := s.Call(t.Context(), "b", "ok", nil); err != nil {
		t.Fatalf("a call to b: %v", err)
	}
	if ev := a.events(t); !slices.Equal(ev, []string{"reset"}) {
		t.Errorf("a's events %v: its successor must be configured, not Reset", ev)
	}
}

// TestSwapKeepsDeviceState: within a session a swap configures the
// successor without a Reset and Closes the old process; the next session
// Resets again.
func TestSwapKeepsDeviceState(t *testing.T) {
	a := faulty(t, "a")
	s := start(t, session.Options{}, a)
	old := s.Pids()["a"]
	if err := s.Swap(t.Context(), "a", a.spec, host.SwapOptions{}); err != nil {
		t.Fatal(err)
	}
	if s.Pids()["a"] == old {
		t.Fatal("the swap kept the old process")
	}
	waitFor(t, "the old process to close", func() bool { return len(a.events(t)) == 2 })
	if ev := a.events(t); !slices.Equal(ev, []string{"reset", "close"}) {
		t.Fatalf("events after the swap %v, want reset, close (the old process's)", ev)
	}
	if err := s.End(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	start(t, session.Options{}, a)
	if ev := a.events(t); !slices.Equal(ev, []string{"reset", "close", "close", "reset"}) {
		t.Errorf("events after a new session %v, want reset, close, close, reset", ev)
	}
}

// TestStartFailure: when one instance cannot start, the others are stopped
// and the error names each failure by uuid.
func TestStartFailure(t *testing.T) {
	good := faulty(t, "good")
	bad := faulty(t, "bad")
	bad.spec.Config = &structpb.Struct{Fields: map[string]*structpb.Value{"fail_config": structpb.NewBoolValue(true)}}
	_, err := session.Start(t.Context(), map[string]host.Spec{"good": good.spec, "bad": bad.spec}, session.Options{})
	var se *session.StartError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *StartError", err)
	}
	if _, ok := se.Failures["bad"]; !ok || len(se.Failures) != 1 {
		t.Fatalf("failures %v, want bad only", se.Failures)
	}
	if !strings.Contains(fmt.Sprint(se.Failures["bad"]), "asked to fail") {
		t.Errorf("bad's failure %v does not say why", se.Failures["bad"])
	}
	if ev := good.events(t); !slices.Equal(ev, []string{"reset", "close"}) {
		t.Errorf("the good instance's events %v, want reset, close: it is stopped", ev)
	}
}
