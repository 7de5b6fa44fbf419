package exporter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// faultRig is an exporter serving two instances: faulty (the faulty test
// plugin, which misbehaves on request) and steady (the power driver).
type faultRig struct {
	c              jumpstarterv1.ExporterServiceClient
	r              jumpstarterv1.RouterServiceClient
	faulty, steady string
}

// serveFaults starts an exporter on yaml with the faulty and power plugins,
// restarting crashed drivers as policy says and giving each driver's Close
// 300ms at a session's end.
func serveFaults(t *testing.T, yaml string, policy *host.Policy) *faultRig {
	t.Helper()
	dir := testbin.PluginDir(t, "power")
	if err := os.Link(testbin.Build(t, "./internal/testplugins/faulty"), filepath.Join(dir, "jumpwire-driver-faulty")); err != nil {
		t.Fatal(err)
	}
	rx := start(t, yaml, nil, func(o *exporter.Options) {
		o.PluginDirs = []string{dir}
		o.RestartPolicy = policy
		o.StopTimeout = 300 * time.Millisecond
	})
	rig := &faultRig{c: rx.c, r: rx.r}
	rig.faulty, rig.steady = uuidOf(t, rig.c, "faulty"), uuidOf(t, rig.c, "steady")
	return rig
}

// labels returns the labels GetReport shows for uuid (what `jw status` prints).
func (rig *faultRig) labels(t *testing.T, uuid string) map[string]string {
	t.Helper()
	r, err := rig.c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Reports {
		if d.Uuid == uuid {
			return d.Labels
		}
	}
	t.Fatalf("GetReport has no instance %s", uuid)
	return nil
}

// health is the state, restarts and last exit GetReport shows for faulty.
type health struct{ state, restarts, lastExit string }

func (rig *faultRig) health(t *testing.T) (health, int) {
	t.Helper()
	l := rig.labels(t, rig.faulty)
	pid, _ := strconv.Atoi(l[exporter.LabelPid])
	return health{l[exporter.LabelState], l[exporter.LabelRestarts], l[exporter.LabelLastExit]}, pid
}

// snapshot is faulty's health and process before a fault.
type snapshot struct {
	health
	pid int
}

func (rig *faultRig) snapshot(t *testing.T) snapshot {
	t.Helper()
	h, pid := rig.health(t)
	return snapshot{h, pid}
}

// recovered checks that faulty serves again under the same uuid: an ok call
// succeeds, in a new process with one more restart if the old one died, else
// in the same one with no restart.
func (rig *faultRig) recovered(t *testing.T, before snapshot, died bool) {
	t.Helper()
	if v, err := call(t, rig.c, rig.faulty, "ok"); err != nil || v != "ok" {
		t.Fatalf("ok after the fault = %v, %v; want ok", v, err)
	}
	h, pid := rig.health(t)
	restarts, _ := strconv.Atoi(before.restarts)
	if died {
		restarts++
	}
	switch {
	case h.state != "running" || h.restarts != strconv.Itoa(restarts):
		t.Errorf("after recovery: state %q, restarts %s; want running, restarts %d", h.state, h.restarts, restarts)
	case died && (pid == before.pid || pid == 0):
		t.Errorf("pid after the process died %d, want a new one (was %d)", pid, before.pid)
	case !died && pid != before.pid:
		t.Errorf("pid changed from %d to %d though the process did not die", before.pid, pid)
	}
	if died && alive(before.pid) {
		t.Errorf("the dead plugin process %d is still running", before.pid)
	}
}

// keepCalling calls state on uuid in a loop until the returned function is
// called, which fails t unless every call succeeded.
func keepCalling(t *testing.T, c jumpstarterv1.ExporterServiceClient, uuid string) (stop func()) {
	t.Helper()
	quit, done := make(chan struct{}), make(chan struct{})
	var (
		n    int
		errs []error
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond) // pacing: the machine is shared
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.DriverCall(ctx, &jumpstarterv1.DriverCallRequest{Uuid: uuid, Method: "state"})
			cancel()
			n++
			if err != nil {
				errs = append(errs, err)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		t.Helper()
		close(quit)
		<-done
		if len(errs) > 0 {
			t.Errorf("%d of %d calls to steady failed meanwhile, first: %v", len(errs), n, errs[0])
		}
	}
}

// wantStatus checks an error's code and exact message.
func wantStatus(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	if st := status.Convert(err); err == nil || st.Code() != code || st.Message() != msg {
		t.Errorf("%s: got %v %q, want %v %q", what, st.Code(), st.Message(), code, msg)
	}
}

// logWatch subscribes to the exporter's log and returns a channel closed at
// the next entry msg from the driver uuid (entries logged before logWatch
// are ignored). It stops watching when t ends.
func (rig *faultRig) logWatch(t *testing.T, uuid, msg string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := rig.c.LogStream(ctx, &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.Header()
	if err != nil {
		t.Fatal(err)
	}
	backlog, _ := strconv.Atoi(firstOf(md, exporter.BacklogHeader))
	seen := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			e, err := s.Recv()
			if err != nil {
				return
			}
			if i >= backlog && e.Uuid == uuid && e.Message == msg {
				close(seen)
				return
			}
		}
	}()
	return seen
}

func firstOf(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// callAsync runs a unary call to faulty in the background.
func (rig *faultRig) callAsync(ctx context.Context, method string, args ...*structpb.Value) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := rig.c.DriverCall(ctx, &jumpstarterv1.DriverCallRequest{Uuid: rig.faulty, Method: method, Args: args})
		errc <- err
	}()
	return errc
}

// sleeping starts a sleep call to faulty and returns once the driver is in
// it, or the call has ended; the call's error arrives on the channel.
func (rig *faultRig) sleeping(ctx context.Context, t *testing.T, seconds float64) <-chan error {
	t.Helper()
	seen := rig.logWatch(t, rig.faulty, "sleeping")
	errc := rig.callAsync(ctx, "sleep", structpb.NewNumberValue(seconds))
	ended := make(chan error, 1)
	select {
	case <-seen:
		return errc
	case err := <-errc:
		ended <- err
		return ended
	case <-time.After(10 * time.Second):
		t.Fatal("the sleep call never reached the driver")
		return nil
	}
}

// echoing opens a byte stream to method of faulty and checks one echo, so
// the stream is known to be open in the driver.
func (rig *faultRig) echoing(t *testing.T, method string) jumpstarterv1.RouterService_StreamClient {
	t.Helper()
	s := open(t, rig.r, rig.faulty, method)
	if err := s.Send(&jumpstarterv1.StreamRequest{Payload: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || string(m.Payload) != "ping" {
		t.Fatalf("echo: %v, %v; want ping", m, err)
	}
	return s
}

// streamEnd reads s until it ends and returns why.
func streamEnd(s jumpstarterv1.RouterService_StreamClient) error {
	for {
		if _, err := s.Recv(); err != nil {
			return err
		}
	}
}

// waitDead polls until none of the processes (by what they are) runs.
func waitDead(t *testing.T, pids map[string]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for what, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) is still running", what, pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// spawn has faulty start a child process (sleep) and returns its pid. If
// the test fails before the child is gone, the child is killed at its end.
func (rig *faultRig) spawn(t *testing.T) int {
	t.Helper()
	v, err := call(t, rig.c, rig.faulty, "spawn")
	if err != nil {
		t.Fatal(err)
	}
	child := int(v.(float64))
	t.Cleanup(func() { killStray(child) })
	if !alive(child) {
		t.Fatalf("spawned child %d is not running", child)
	}
	return child
}

// killStray kills pid if it is still the sleep a plugin spawned (and not a
// process that got its pid since).
func killStray(pid int) {
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); alive(pid) && strings.Contains(string(b), "sleep\x001000") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if pid == 0 {
		t.Fatal("no process to kill")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

const faultsConfig = header + `failureDetection: {maxRapidFailures: 1000}
export:
  faulty:
    type: faulty
  steady:
    type: power
`

// TestFaults injects every fault a driver can suffer into faulty while
// another driver, steady, is called all along. For each fault the user sees
// one exact status; faulty serves again under the same uuid; steady never
// fails.
func TestFaults(t *testing.T) {
	// A constant ~250ms backoff: quick restarts that stay observable.
	rig := serveFaults(t, faultsConfig, &host.Policy{InitialBackoff: 250 * time.Millisecond, MaxBackoff: 250 * time.Millisecond})
	c, faulty := rig.c, rig.faulty
	const (
		exited3 = "driver faulty (faulty) exited with status 3"
		killed  = "driver faulty (faulty) was killed by SIGKILL"
	)

	t.Run("panic in a unary call", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		_, err := call(t, c, faulty, "panic", structpb.NewStringValue("boom"))
		wantStatus(t, "panic", err, codes.Internal, "panic: driver panicked: boom")
		rig.recovered(t, before, false)
	})

	t.Run("panic in a streaming call", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		s, err := c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{Uuid: faulty, Method: "stream_panic"})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := s.Recv(); err != nil || m.Result.GetStringValue() != "first" {
			t.Fatalf("first result: %v, %v", m, err)
		}
		_, err = s.Recv()
		wantStatus(t, "stream_panic", err, codes.Internal, "stream_panic: driver panicked: stream_panic: boom")
		rig.recovered(t, before, false)
	})

	t.Run("panic in a byte stream", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		s := rig.echoing(t, "echo_panic")
		wantStatus(t, "echo_panic", streamEnd(s), codes.Internal, "echo_panic: driver panicked: echo_panic: boom")
		rig.recovered(t, before, false)
	})

	t.Run("os.Exit mid-call", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		_, err := call(t, c, faulty, "exit", structpb.NewNumberValue(3))
		wantStatus(t, "exit 3", err, codes.Unavailable, exited3)
		rig.recovered(t, before, true)
	})

	t.Run("SIGKILL mid-call", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		errc := rig.sleeping(t.Context(), t, 30)
		kill(t, before.pid)
		wantStatus(t, "sleep when killed", <-errc, codes.Unavailable, killed)
		rig.recovered(t, before, true)
	})

	t.Run("SIGKILL mid byte-stream", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		s := rig.echoing(t, "echo")
		kill(t, before.pid)
		wantStatus(t, "echo when killed", streamEnd(s), codes.Unavailable, killed)
		rig.recovered(t, before, true)
	})

	t.Run("OOM kill", func(t *testing.T) {
		// The kernel's OOM killer ends a process with SIGKILL: to the
		// exporter it is the same exit as kill -9, so SIGKILL stands in for
		// it here (a real one needs a memory cgroup the test cannot count on).
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		errc := rig.sleeping(t.Context(), t, 30)
		kill(t, before.pid)
		wantStatus(t, "sleep when OOM-killed", <-errc, codes.Unavailable, killed)
		rig.recovered(t, before, true)
	})

	t.Run("out of memory without a cgroup", func(t *testing.T) {
		// Under an address-space limit (RLIMIT_AS) allocation fails instead:
		// the Go runtime dies with exit status 2 and "fatal error: out of
		// memory", which the message quotes.
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		_, err := call(t, c, faulty, "oom")
		// Go words it after where allocation failed: "fatal error: out of
		// memory", "... allocating heap arena metadata", ...
		const want = "driver faulty (faulty) exited with status 2: fatal error: out of memory"
		if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.HasPrefix(st.Message(), want) {
			t.Errorf("oom: got %v %q, want %v %q...", st.Code(), st.Message(), codes.Unavailable, want)
		}
		rig.recovered(t, before, true)
	})

	t.Run("panic outside any call", func(t *testing.T) {
		// A panic in a goroutine of the driver's own ends the process; the
		// first line of Go's report on stderr says why.
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		_, err := call(t, c, faulty, "crash", structpb.NewStringValue("wild goroutine"))
		const crashed = "exited with status 2: panic: wild goroutine"
		wantStatus(t, "crash", err, codes.Unavailable, "driver faulty (faulty) "+crashed)
		rig.recovered(t, before, true)
		if h, _ := rig.health(t); h.lastExit != crashed {
			t.Errorf("last exit %q, want %q", h.lastExit, crashed)
		}
	})

	t.Run("deadline exceeded", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		errc := rig.sleeping(ctx, t, 5)
		// The plugin goes on serving other calls.
		if v, err := call(t, c, faulty, "ok"); err != nil || v != "ok" {
			t.Errorf("ok while another call sleeps = %v, %v", v, err)
		}
		// The client's gRPC and the exporter's both time the deadline: the
		// client reads its own "context deadline exceeded" or, when the
		// exporter's timer fired first, the reset it sent. The code is the same.
		err := <-errc
		if st := status.Convert(err); st.Message() == "stream terminated by RST_STREAM with error code: CANCEL" {
			wantStatus(t, "sleep 5 with a 200ms deadline", err, codes.DeadlineExceeded, st.Message())
		} else {
			wantStatus(t, "sleep 5 with a 200ms deadline", err, codes.DeadlineExceeded, "context deadline exceeded")
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("the call ended after %v: its deadline did not end it", d)
		}
		rig.recovered(t, before, false)
	})

	t.Run("a call right after a kill waits for the restart", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		kill(t, before.pid)
		// At once: the call must wait for the new process, not fail.
		if v, err := call(t, c, faulty, "ok"); err != nil || v != "ok" {
			t.Fatalf("ok right after the kill = %v, %v; want it to wait for the restart and succeed", v, err)
		}
		rig.recovered(t, before, true)
		if h, _ := rig.health(t); h.lastExit != "was killed by SIGKILL" {
			t.Errorf("last exit after the restart %q", h.lastExit)
		}
	})

	t.Run("status while restarting", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		_, err := call(t, c, faulty, "exit", structpb.NewNumberValue(3))
		wantStatus(t, "exit 3", err, codes.Unavailable, exited3)
		deadline := time.Now().Add(5 * time.Second)
		for {
			h, pid := rig.health(t)
			if h.state == "restarting" {
				if want := (health{"restarting", before.restarts, "exited with status 3"}); h != want || pid != 0 {
					t.Errorf("while restarting: %+v pid %d, want %+v and no pid", h, pid, want)
				}
				break
			}
			if pid != before.pid || time.Now().After(deadline) {
				t.Fatalf("never saw state restarting after the crash: %+v pid %d", h, pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
		rig.recovered(t, before, true) // the call waits for the restart
		if h, _ := rig.health(t); h.lastExit != "exited with status 3" {
			t.Errorf("last exit after the restart %q", h.lastExit)
		}
	})

	t.Run("a crashing plugin's child dies with it", func(t *testing.T) {
		defer keepCalling(t, c, rig.steady)()
		before := rig.snapshot(t)
		child := rig.spawn(t)
		_, err := call(t, c, faulty, "exit", structpb.NewNumberValue(3))
		wantStatus(t, "exit 3", err, codes.Unavailable, exited3)
		waitDead(t, map[string]int{"the crashed plugin": before.pid, "the child it spawned": child})
		rig.recovered(t, before, true)
	})

	// Last: it ends the session, for steady too, so steady is checked in
	// the next one.
	t.Run("a plugin ignoring shutdown is killed at session end", func(t *testing.T) {
		pid := rig.snapshot(t).pid
		child := rig.spawn(t)
		if _, err := call(t, c, faulty, "ignore_shutdown"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r, err := c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{})
		if err != nil || !r.Success {
			t.Fatalf("EndSession: %v, %v", r, err)
		}
		// Close gets 300ms, go-plugin's graceful exit 2s more, then the
		// process group is killed.
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("ending the session took %v", d)
		}
		waitDead(t, map[string]int{"the plugin that ignored shutdown": pid, "the child it spawned": child})
		if v, err := call(t, c, faulty, "ok"); err != nil || v != "ok" {
			t.Fatalf("ok in the next session = %v, %v", v, err)
		}
		if h, newPid := rig.health(t); h != (health{state: "running", restarts: "0"}) || newPid == pid || newPid == 0 {
			t.Errorf("the next session's faulty: %+v in process %d (the old one was %d)", h, newPid, pid)
		}
		if v, err := call(t, c, rig.steady, "state"); err != nil || v != false {
			t.Errorf("steady in the next session = %v, %v", v, err)
		}
	})
}

// TestCrashLoop: a driver that crashes maxRapidFailures times within
// rapidFailureWindow is marked failed, its calls fail fast with a sentence
// saying so, and after RetryAfter it is tried again and serves; the other
// driver never notices.
func TestCrashLoop(t *testing.T) {
	const retry = time.Second
	rig := serveFaults(t, header+`failureDetection: {maxRapidFailures: 3, rapidFailureWindow: 60}
export:
  faulty:
    type: faulty
  steady:
    type: power
`, &host.Policy{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, RetryAfter: retry})
	defer keepCalling(t, rig.c, rig.steady)()
	pid := rig.snapshot(t).pid
	failed := fmt.Sprintf("driver faulty (faulty) failed: it crashed 3 times within 1m0s "+
		"(last: exited with status 3); it will be retried in %s", retry)

	var (
		crashes    int
		lastCrash  time.Time
		fastFailed time.Time
	)
	for range 10 {
		start := time.Now()
		_, err := call(t, rig.c, rig.faulty, "exit", structpb.NewNumberValue(3))
		if st := status.Convert(err); st.Code() == codes.Unavailable && st.Message() == failed {
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("a call to the failed driver took %v to fail; it should fail fast", d)
			}
			fastFailed = time.Now()
			break
		}
		wantStatus(t, "exit 3", err, codes.Unavailable, "driver faulty (faulty) exited with status 3")
		crashes++
		lastCrash = start
	}
	if crashes != 3 || fastFailed.IsZero() {
		t.Fatalf("%d crashes, then failed fast: %v; want 3 crashes, then fast failures", crashes, !fastFailed.IsZero())
	}
	if h, p := rig.health(t); h.state != "failed" || h.restarts != "2" || h.lastExit != "exited with status 3" || p != 0 {
		t.Errorf("labels of the failed driver: %+v pid %d", h, p)
	}

	// After RetryAfter it is tried again: calls fail fast until then, then
	// succeed, in a new process.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := call(t, rig.c, rig.faulty, "ok")
		if err == nil {
			break
		}
		wantStatus(t, "ok before the retry", err, codes.Unavailable, failed)
		if time.Now().After(deadline) {
			t.Fatalf("the failed driver was not retried within %v", 10*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(lastCrash); d < retry {
		t.Errorf("the failed driver served again %v after its last crash, before RetryAfter %v", d, retry)
	}
	if h, p := rig.health(t); h.state != "running" || h.restarts != "3" || p == 0 || p == pid {
		t.Errorf("labels after the retry: %+v pid %d (first pid %d)", h, p, pid)
	}
}
