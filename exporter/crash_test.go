package exporter_test

import (
	"sync"
	"syscall"
	"testing"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const twoPowers = header + `export:
  power:
    type: power
    config: {readings: 100000, interval: 5ms}
  other:
    type: power
`

// TestKilledDriverRecovers: kill -9 of a driver's process during a streaming
// call gives the caller one clear UNAVAILABLE naming the driver and how it
// died; the driver is restarted under the same uuid and the next call
// succeeds, while calls to another driver never notice.
func TestKilledDriverRecovers(t *testing.T) {
	e, c := serve(t, twoPowers)
	power, other := uuidOf(t, c, "power"), uuidOf(t, c, "other")
	pid := e.Session().Pids()[power]

	// Meanwhile, another driver keeps being called.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var otherErrs []error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := call(t, c, other, "state"); err != nil {
				otherErrs = append(otherErrs, err)
			}
		}
	})

	s, err := c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{Uuid: power, Method: "read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = s.Recv()
	}
	want := "driver power (power) was killed by SIGKILL"
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != want {
		t.Errorf("stream ended with %v %q, want UNAVAILABLE %q", st.Code(), st.Message(), want)
	}

	// The next call waits for the restart and succeeds, same uuid.
	if _, err := call(t, c, power, "on"); err != nil {
		t.Fatalf("call after the crash: %v", err)
	}
	if v, err := call(t, c, power, "state"); err != nil || v != true {
		t.Errorf("state after restart = %v, %v", v, err)
	}
	close(stop)
	wg.Wait()
	if len(otherErrs) > 0 {
		t.Errorf("calls to the other driver failed during the crash: %v", otherErrs)
	}
	if newPid := e.Session().Pids()[power]; newPid == pid || newPid == 0 {
		t.Errorf("pid after restart %d (was %d)", newPid, pid)
	}
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Reports {
		if d.Uuid == power {
			l := d.Labels
			if l["jumpwire.dev/state"] != "running" || l["jumpwire.dev/restarts"] != "1" || l["jumpwire.dev/last-exit"] != "was killed by SIGKILL" {
				t.Errorf("health labels after a restart: %v", l)
			}
		}
	}
}
