package host_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/host"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// driverKinds are the SDK's error kinds (as the faulty plugin names them)
// and the code a client sees for each.
var driverKinds = []struct {
	kind string
	code codes.Code
}{
	{"not_found", codes.NotFound},
	{"unsupported", codes.Unimplemented},
	{"invalid_argument", codes.InvalidArgument},
	{"unavailable", codes.Unavailable},
	{"io", codes.Internal},
	{"busy", codes.FailedPrecondition},
}

// within runs f and fails the test with what f returns, or if f has not
// returned after a generous deadline: a call that waits for a process exit
// that never comes would hang here rather than return the driver's answer.
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still waiting after 30s (for an exit that never comes?)", what)
	}
}

// statusIs checks that err has code and msg.
func statusIs(err error, code codes.Code, msg string) error {
	if s := status.Convert(err); s.Code() != code || s.Message() != msg {
		return fmt.Errorf("got %v %q, want %v %q", s.Code(), s.Message(), code, msg)
	}
	return nil
}

// TestDriverErrorsKeepTheirKind: every error kind a driver returns reaches
// the host's caller with its code and the driver's sentence, from a call, a
// streaming call and Reset, and at once: the host does not wait for an exit
// of a process that answered. The wait for an exit is made endless here, so
// a call that waited would never return. Not parallel: it changes that wait.
func TestDriverErrorsKeepTheirKind(t *testing.T) {
	defer host.SetExitGrace(time.Hour)()
	inst, _ := startFaulty(t)
	pid := inst.Pid()
	for _, k := range driverKinds {
		t.Run(k.kind, func(t *testing.T) {
			msg := "the device said " + k.kind
			a := args(t, k.kind, msg)
			within(t, "fail", func() error {
				_, err := inst.Call(t.Context(), "fail", a)
				return statusIs(err, k.code, msg)
			})
			within(t, "fail_streaming", func() error {
				var got []string
				for v, err := range inst.StreamingCall(t.Context(), "fail_streaming", a) {
					if err != nil {
						if len(got) != 1 {
							return fmt.Errorf("yielded %q before failing, want [first]", got)
						}
						return statusIs(err, k.code, msg)
					}
					got = append(got, v.GetStringValue())
				}
				return fmt.Errorf("yielded %q and did not fail", got)
			})
			within(t, "Reset", func() error {
				if _, err := inst.Call(t.Context(), "fail_reset", a); err != nil {
					return err
				}
				return statusIs(inst.Reset(t.Context()), k.code, msg)
			})
		})
	}
	within(t, "a stream to a missing method", func() error {
		st, release, err := inst.Stream(t.Context(), "nothing")
		if err != nil {
			return err
		}
		defer release()
		_, err = st.Recv()
		return statusIs(inst.StreamError(t.Context(), st, err), codes.NotFound, `faulty has no method "nothing"`)
	})
	if inst.Pid() != pid {
		t.Errorf("the plugin process changed: pid %d, was %d", inst.Pid(), pid)
	}
	callOK(t, inst)
}
