package exporter_test

import (
	"context"
	"fmt"
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
		// One byte, written once the client saw the stream open: the
		// driver subscribed to the port before it said so (the SDK opens a
		// stream at its first read or write), so the byte is this stream's
		// and not the leaving one's.
		if _, err := dev.Write([]byte{byte('a' + i%26)}); err != nil {
			cancel()
			t.Fatal(err)
		}
		timer := time.AfterFunc(10*time.Second, cancel)
		m, err := s.Recv()
		timer.Stop()
		if err != nil || string(m.Payload) != string(rune('a'+i%26)) {
			cancel()
			t.Fatalf("reconnect %d after %s: %q, %v", i, time.Since(began), m.GetPayload(), err)
		}
		cancel()
	}
}
