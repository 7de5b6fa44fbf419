package sdk_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// gatedDriver's byte stream does its set-up (waits for gate) before its
// first read, as a serial driver subscribes to its port first.
type gatedDriver struct {
	sdk.Base
	gate chan struct{}
}

func (d *gatedDriver) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.ExportStream("gated", func(ctx context.Context, conn sdk.Conn) error {
			select {
			case <-d.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
			_, err := conn.Write([]byte("ready"))
			return err
		}, "Wait for the gate, then write"),
		sdk.ExportStream("refuse", func(context.Context, sdk.Conn) error {
			return fmt.Errorf("%w: the port is taken", sdk.ErrBusy)
		}, "Fail before any I/O"),
	}
}

// TestStreamOpensAtFirstIO: a byte stream is open for the client (gRPC
// headers) only once its method first reads or writes, so nothing the
// device sends after the client saw it open can predate the method's
// set-up; and a method that fails before any I/O fails the open.
func TestStreamOpensAtFirstIO(t *testing.T) {
	t.Parallel()
	d := &gatedDriver{gate: make(chan struct{})}
	inst := sdktest.Start(t, driverType("gated", d), nil)

	ctx := metadata.AppendToOutgoingContext(t.Context(), protocol.MethodHeader, "gated")
	s, err := inst.RPC.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() { _, err := s.Header(); opened <- err }()
	select {
	case err := <-opened:
		t.Fatalf("the stream opened before its method's first I/O (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(d.gate)
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	f, err := s.Recv()
	if err != nil || string(f.Payload) != "ready" {
		t.Fatalf("first frame %q, %v", f.GetPayload(), err)
	}

	_, err = inst.Stream(t.Context(), "refuse")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "the port is taken") {
		t.Fatalf("open of a method that fails before any I/O: %v", err)
	}
}
