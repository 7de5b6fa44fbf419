package grpcerr

import (
	"errors"
	"io/fs"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestWrapKeepsTheCode(t *testing.T) {
	for _, code := range []codes.Code{codes.NotFound, codes.Unimplemented, codes.InvalidArgument,
		codes.Unavailable, codes.Internal, codes.FailedPrecondition, codes.Unknown} {
		t.Run(code.String(), func(t *testing.T) {
			inner := status.Error(code, "the device said no")
			err := Wrap(Wrap(inner, "reset %s", "dut.power"), "session")
			s, ok := status.FromError(err)
			if !ok || s.Code() != code {
				t.Fatalf("status %v (ok %v), want code %v", s, ok, code)
			}
			if want := "session: reset dut.power: the device said no"; s.Message() != want || err.Error() != want {
				t.Errorf("message %q, text %q; want %q", s.Message(), err.Error(), want)
			}
			if !errors.Is(err, inner) {
				t.Error("errors.Is does not see the wrapped error")
			}
		})
	}
}

func TestWrapOfAPlainError(t *testing.T) {
	err := Wrap(fs.ErrNotExist, "open config")
	if status.Code(err) != codes.Unknown || err.Error() != "open config: file does not exist" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v (%v)", err, status.Code(err))
	}
	if Wrap(nil, "x") != nil || Join(nil, nil) != nil {
		t.Error("nil in, non-nil out")
	}
}

func TestJoinTakesTheFirstCode(t *testing.T) {
	busy := Wrap(status.Error(codes.FailedPrecondition, "busy"), "reset a")
	gone := Wrap(status.Error(codes.Unavailable, "gone"), "reset b")
	err := Join(nil, busy, gone)
	s := status.Convert(err)
	if s.Code() != codes.FailedPrecondition || s.Message() != "reset a: busy; reset b: gone" {
		t.Errorf("got %v: %q", s.Code(), s.Message())
	}
	if !errors.Is(err, gone) {
		t.Error("errors.Is does not see the second error")
	}
}
