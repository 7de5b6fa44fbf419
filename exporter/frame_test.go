package exporter

import (
	"bytes"
	"testing"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/protobuf/proto"
)

// TestFrameIsStreamRequest checks what the relay relies on: a plugin frame,
// as the protocol encodes it, is a jumpstarter.v1 StreamRequest (and
// StreamResponse) to the client, so frames pass through unchanged.
func TestFrameIsStreamRequest(t *testing.T) {
	payload := bytes.Repeat([]byte("jumpwire"), 4096)
	for _, tt := range []struct {
		name    string
		frame   *protocol.Frame
		kind    int32
		payload []byte
	}{
		{"data", protocol.Data(payload), protocol.KindData, payload},
		{"empty data", protocol.Data(nil), protocol.KindData, nil},
		{"goaway", protocol.Control(protocol.KindGoaway), protocol.KindGoaway, nil},
		{"reset", protocol.Control(protocol.KindRST), protocol.KindRST, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, err := protocol.Codec.Marshal(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			b := data.Materialize()
			data.Free()
			var req jumpstarterv1.StreamRequest
			var resp jumpstarterv1.StreamResponse
			if err := proto.Unmarshal(b, &req); err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			if int32(req.FrameType) != tt.kind || !bytes.Equal(req.Payload, tt.payload) ||
				int32(resp.FrameType) != tt.kind || !bytes.Equal(resp.Payload, tt.payload) {
				t.Errorf("decoded as request %v (%d bytes), response %v (%d bytes); want kind %d with %d bytes",
					req.FrameType, len(req.Payload), resp.FrameType, len(resp.Payload), tt.kind, len(tt.payload))
			}
		})
	}
}
