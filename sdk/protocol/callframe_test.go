package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/proto"
)

func TestCallFramesRoundTrip(t *testing.T) {
	frames := []*pluginv1.CallFrame{
		{Id: 1, Instance: "power", Request: &pluginv1.CallRequest{Method: "on"}},
		{Id: 1, Cancel: true},
		{Id: 7, Code: 3, Message: "bad value"},
		{}, // every field empty: a zero-length body
	}
	var b []byte
	for _, f := range frames {
		var err error
		if b, err = protocol.AppendCallFrame(b, f); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(b)
	var buf []byte
	for i, want := range frames {
		var got *pluginv1.CallFrame
		var err error
		if got, buf, err = protocol.ReadCallFrame(r, buf); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, _, err := protocol.ReadCallFrame(r, buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestCallFrameErrors(t *testing.T) {
	whole, err := protocol.AppendCallFrame(nil, &pluginv1.CallFrame{Id: 1, Request: &pluginv1.CallRequest{Method: "on"}})
	if err != nil {
		t.Fatal(err)
	}
	huge := binary.BigEndian.AppendUint32(nil, protocol.MaxMessageSize+1)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"cut in the body", string(whole[:len(whole)-1]), "unexpected EOF"},
		{"cut in the length", string(whole[:2]), "unexpected EOF"},
		{"longer than any message", string(huge), "more than the largest message"},
		{"not a CallFrame", "\x00\x00\x00\x02\xff\xff", "call frame: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := protocol.ReadCallFrame(strings.NewReader(tc.in), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("%v reads as a clean end", err)
			}
		})
	}
	big := &pluginv1.CallFrame{Response: &pluginv1.CallResponse{}}
	big.Message = strings.Repeat("x", protocol.MaxMessageSize)
	if b, err := protocol.AppendCallFrame([]byte("kept"), big); err == nil || string(b) != "kept" {
		t.Fatalf("an oversized frame: %v, buffer %q", err, b[:min(len(b), 8)])
	}
}
