package exporter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/ptypair"
	"github.com/jumpwire-dev/jumpwire/session"
	"google.golang.org/grpc/metadata"
)

// TestQuickReconnects: a client that cancels its serial stream and opens
// another at once gets it, every time, more times than the session has
// stream slots. (A cancelled stream once held its slot, and the port, for
// a second or more: quick reconnects were refused as busy, and after 64 of
// them every stream in the session was.)
func TestQuickReconnects(t *testing.T) {
	p := ptypair.Start(t)
	r, c, _ := serveStreams(t, header+"export:\n  console:\n    type: jumpstarter_driver_pyserial.driver.PySerial\n    config: {url: "+p.Port+"}\n")
	uuid := uuidOf(t, c, "console")
	dev := p.OpenPeer(t)
	req := fmt.Sprintf(`{"kind":"driver","uuid":%q,"method":"connect"}`, uuid)
	for i := range session.DefaultMaxStreams + 16 {
		ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(t.Context(), "request", req))
		began := time.Now()
		s, err := r.Stream(ctx)
		if err == nil {
			_, err = s.Header()
		}
		if err != nil {
			cancel()
			t.Fatalf("reconnect %d: %v", i, err)
		}
		// The device writes until the stream shows a byte: one written
		// while the previous stream's reader was still leaving may go to it.
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				if _, err := dev.Write([]byte("x")); err != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
		timer := time.AfterFunc(10*time.Second, cancel)
		m, err := s.Recv()
		timer.Stop()
		if err != nil || len(m.Payload) == 0 || strings.Trim(string(m.Payload), "x") != "" {
			cancel()
			<-wrote
			t.Fatalf("reconnect %d after %s: %q, %v", i, time.Since(began), m.GetPayload(), err)
		}
		cancel()
		<-wrote
	}
}
