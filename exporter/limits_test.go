package exporter_test

import (
	"context"
	"testing"

	"github.com/jumpwire-dev/jumpwire/exporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestSessionLimits: a client cannot hold more calls in flight than the
// session allows; past the limit it gets RESOURCE_EXHAUSTED, and a slot
// freed is usable again.
func TestSessionLimits(t *testing.T) {
	rx := start(t, header+"export:\n  power:\n    type: power\n    config: {readings: 1000, interval: 1s}\n", nil,
		func(o *exporter.Options) { o.MaxCalls = 2 })
	power := uuidOf(t, rx.c, "power")
	var cancels []context.CancelFunc
	for range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		s, err := rx.c.StreamingDriverCall(ctx, &jumpstarterv1.StreamingDriverCallRequest{Uuid: power, Method: "read"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil { // in flight now
			t.Fatal(err)
		}
	}
	_, err := call(t, rx.c, power, "on")
	want := "this session already has 2 calls in flight, its limit; wait for some to finish"
	if s := status.Convert(err); s.Code() != codes.ResourceExhausted || s.Message() != want {
		t.Errorf("third call: %v %q, want RESOURCE_EXHAUSTED %q", s.Code(), s.Message(), want)
	}
	cancels[0]()
	for {
		_, err := call(t, rx.c, power, "on")
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("after a slot was freed: %v", err)
		}
	}
	cancels[1]()
}
