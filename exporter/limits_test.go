package exporter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/exporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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

// TestClientLimits: one client holding all the calls it may cannot starve
// another: past its share it gets RESOURCE_EXHAUSTED naming the client's
// limit, and a second client (another connection on the unix socket) still
// gets through.
func TestClientLimits(t *testing.T) {
	rx := start(t, header+"export:\n  power:\n    type: power\n    config: {readings: 1000, interval: 1s}\n", nil,
		func(o *exporter.Options) { o.MaxCalls = 8 })
	power := uuidOf(t, rx.c, "power")
	greedy := rx.dial(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	held := 0
	var err error
	for held < 8 {
		var s jumpstarterv1.ExporterService_StreamingDriverCallClient
		s, err = greedy.StreamingDriverCall(ctx, &jumpstarterv1.StreamingDriverCallRequest{Uuid: power, Method: "read"})
		if err == nil {
			_, err = s.Recv()
		}
		if err != nil {
			break
		}
		held++
	}
	want := "this client already has 6 calls in flight, its share of the session's; wait for some to finish"
	if s := status.Convert(err); held != 6 || s.Code() != codes.ResourceExhausted || s.Message() != want {
		t.Errorf("a greedy client held %d calls, then %v; want 6, then RESOURCE_EXHAUSTED %q", held, err, want)
	}
	if _, err := call(t, rx.c, power, "on"); err != nil {
		t.Errorf("another client while the greedy one holds its share: %v", err)
	}
}

// TestRefusalsDoNotEchoHugeValues: a refusal quotes what the client sent,
// shortened: an 8 MiB uuid or stream header is not sent back in full.
func TestRefusalsDoNotEchoHugeValues(t *testing.T) {
	rx := start(t, header+"export:\n  power: {type: power}\n", nil)
	huge := strings.Repeat("x", 8<<20)
	_, err := rx.c.DriverCall(t.Context(), &jumpstarterv1.DriverCallRequest{Uuid: huge, Method: "on"})
	if s := status.Convert(err); s.Code() != codes.NotFound || len(s.Message()) > 512 || !strings.Contains(s.Message(), "(8388608 bytes)") {
		t.Errorf("a call to an 8 MiB uuid: %v, %d bytes of message; want NOT_FOUND quoting it shortened", s.Code(), len(s.Message()))
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "request", `{"kind":"driver","uuid":"`+strings.Repeat("x", 512<<10))
	s, err := rx.r.Stream(ctx)
	if err == nil {
		_, err = s.Recv()
	}
	if s := status.Convert(err); s.Code() != codes.InvalidArgument || len(s.Message()) > 1024 {
		t.Errorf("a stream with a 512 KiB header: %v, %d bytes of message; want INVALID_ARGUMENT, shortened", s.Code(), len(s.Message()))
	}
}
