package protocol

import (
	"bytes"
	"errors"
	"io"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// encode is v's encoding as one byte slice, through Codec.
func encode(t testing.TB, v any) []byte {
	t.Helper()
	data, err := Codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Free()
	return data.Materialize()
}

// pieces splits b into buffers of at most n bytes, as gRPC hands over a
// message that arrived in several HTTP/2 frames.
func pieces(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return s
}

// decode decodes b, split into buffers of n bytes, into a Frame.
func decode(t testing.TB, b []byte, n int) *Frame {
	t.Helper()
	f := new(Frame)
	if err := Codec.Unmarshal(pieces(b, n), f); err != nil {
		t.Fatalf("unmarshal %x: %v", b, err)
	}
	return f
}

func TestFrameEncodingIsTheProtocols(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 5000)
	for _, tt := range []struct {
		name    string
		frame   *Frame
		kind    int32
		payload []byte
	}{
		{"data", Data(payload), KindData, payload},
		{"small data", Data([]byte("x")), KindData, []byte("x")},
		{"empty data", Data(nil), KindData, nil},
		{"goaway", Control(KindGoaway), KindGoaway, nil},
		{"reset", Control(KindRST), KindRST, nil},
		{"read", mustRead(t, strings.NewReader(string(payload)), 1<<20), KindData, payload},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := encode(t, tt.frame)
			var pf pluginv1.Frame
			if err := proto.Unmarshal(b, &pf); err != nil {
				t.Fatal(err)
			}
			if int32(pf.Kind) != tt.kind || !bytes.Equal(pf.Payload, tt.payload) {
				t.Errorf("decoded as plugin frame %v (%d bytes); want kind %d with %d bytes",
					pf.Kind, len(pf.Payload), tt.kind, len(tt.payload))
			}
			// The protocol's own encoding decodes back, in buffers of any size.
			want, err := proto.Marshal(&pf)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 2, 3, 7, 16 << 10, len(want) + 1} {
				f := decode(t, want, n)
				if f.Kind() != tt.kind || f.Len() != len(tt.payload) || !bytes.Equal(f.Bytes(), tt.payload) {
					t.Errorf("in buffers of %d bytes: kind %d, %d bytes", n, f.Kind(), f.Len())
				}
			}
		})
	}
}

func mustRead(t *testing.T, r io.Reader, size int) *Frame {
	t.Helper()
	f, err := ReadFrame(r, size)
	if f == nil {
		t.Fatalf("ReadFrame: no frame (%v)", err)
	}
	return f
}

func TestFrameFieldsInAnyOrder(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 3, protowire.VarintType) // unknown fields of every kind
	b = protowire.AppendVarint(b, 1<<40)
	b = protowire.AppendTag(b, fieldKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(KindGoaway))
	b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("first"))
	b = protowire.AppendTag(b, 4, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	b = protowire.AppendTag(b, 5, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("unknown"))
	b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("last payload wins"))
	b = protowire.AppendTag(b, fieldKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(KindData))
	for _, n := range []int{1, 5, len(b)} {
		f := decode(t, b, n)
		if f.Kind() != KindData || string(f.Bytes()) != "last payload wins" {
			t.Errorf("buffers of %d: kind %d", n, f.Kind())
		}
	}
	// A relayed frame keeps what it does not know.
	f := decode(t, b, 3)
	if got := encode(t, f); !bytes.Equal(got, b) {
		t.Errorf("relayed encoding %x, want %x", got, b)
	}
}

func TestFrameRejectsBrokenEncodings(t *testing.T) {
	for name, b := range map[string][]byte{
		"truncated payload": {0x0a, 5, 'a', 'b'},
		"truncated length":  {0x0a},
		"truncated varint":  {0x10, 0x80},
		"field zero":        {0x00, 1},
		"group":             {0x1b},
		"endless varint":    bytes.Repeat([]byte{0xff}, 11),
	} {
		if err := Codec.Unmarshal(pieces(b, 1), new(Frame)); err == nil {
			t.Errorf("%s (%x): no error", name, b)
		}
	}
}

func TestFrameReadAndWriteTo(t *testing.T) {
	payload := []byte("abcdefghijklmnopqrstuvwxyz")
	b := encode(t, Data(payload))

	f := decode(t, b, 4)
	var got []byte
	p := make([]byte, 3)
	for {
		n, err := f.Read(p)
		got = append(got, p[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if n == 0 {
			t.Fatal("Read returned 0, nil")
		}
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("Read gave %q", got)
	}
	f.Free()

	f = decode(t, b, 4)
	if _, err := f.Read(make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if n, err := f.WriteTo(&out); err != nil || n != int64(len(payload)-5) || out.String() != string(payload[5:]) {
		t.Errorf("WriteTo after reading 5: %d, %v, %q", n, err, out.String())
	}
	if f.Len() != 0 {
		t.Errorf("Len after WriteTo: %d", f.Len())
	}
	f.Free()
	f.Free() // twice is fine
}

func TestFrameReaderSizes(t *testing.T) {
	// A source that always has more than asked: reads come back full and grow.
	fr := NewFrameReader(zeros{})
	var sizes []int
	for range 8 {
		f, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, f.Len())
		f.Free()
	}
	if sizes[0] != minRead || sizes[len(sizes)-1] != maxRead {
		t.Errorf("read sizes %v: want %d growing to %d", sizes, minRead, maxRead)
	}
	// Small reads shrink it again.
	fr.r = strings.NewReader(strings.Repeat("x", 1000))
	f, err := fr.Next()
	if err != nil || f.Len() != 1000 || fr.size != maxRead/2 {
		t.Errorf("after a small read: %v, size %d", err, fr.size)
	}
	f, err = fr.Next()
	if f != nil || !errors.Is(err, io.EOF) {
		t.Errorf("at EOF: %v, %v; want no frame and EOF", f, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestCodecProtobufMessages(t *testing.T) {
	big := &pluginv1.Frame{Payload: bytes.Repeat([]byte{7}, 100<<10), Kind: pluginv1.FrameKind_FRAME_KIND_PING}
	for _, m := range []proto.Message{big, &pluginv1.Frame{Payload: []byte("small")}} {
		b := encode(t, m)
		var back pluginv1.Frame
		if err := Codec.Unmarshal(pieces(b, 1000), &back); err != nil || !proto.Equal(&back, m) {
			t.Errorf("round trip: %v", err)
		}
	}
	if _, err := Codec.Marshal("not a message"); err == nil {
		t.Error("Marshal(string): no error")
	}
	if err := Codec.Unmarshal(nil, new(int)); err == nil {
		t.Error("Unmarshal(int): no error")
	}
}

// FuzzFrame checks the frame decoder against protobuf's: whatever protobuf
// decodes as a plugin frame, the decoder decodes to the same kind and
// payload, in buffers of any size; and nothing makes it panic.
func FuzzFrame(f *testing.F) {
	f.Add([]byte{0x0a, 3, 'a', 'b', 'c'}, uint8(1))
	f.Add([]byte{0x10, 7}, uint8(2))
	f.Add([]byte{0x18, 1, 0x0a, 1, 'x', 0x10, 3}, uint8(3))
	f.Add(nestedGroups(64), uint8(5))
	f.Add(nestedGroups(maxGroupDepth), uint8(255))
	f.Add(nestedGroups(maxGroupDepth+1), uint8(255))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		fr := new(Frame)
		err := Codec.Unmarshal(pieces(b, int(n)+1), fr)
		var pf pluginv1.Frame
		if proto.Unmarshal(b, &pf) != nil {
			return
		}
		if err != nil {
			t.Fatalf("protobuf decodes %x, the frame decoder says %v", b, err)
		}
		if fr.Kind() != int32(pf.Kind) || !bytes.Equal(fr.Bytes(), pf.Payload) {
			t.Fatalf("%x: kind %d, payload differs; protobuf: kind %d, %d bytes", b, fr.Kind(), pf.Kind, len(pf.Payload))
		}
	})
}

// nestedGroups is the encoding of a frame whose unknown field 3 holds depth
// groups, each inside the last, around a payload.
func nestedGroups(depth int) []byte {
	var b []byte
	for range depth {
		b = protowire.AppendTag(b, 3, protowire.StartGroupType)
	}
	for range depth {
		b = protowire.AppendTag(b, 3, protowire.EndGroupType)
	}
	b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
	return protowire.AppendBytes(b, []byte("inside"))
}

// TestFrameDeepNesting: nesting that protobuf accepts decodes; nesting past
// its limit (a peer's 4 MiB of group starts once overflowed the decoder's
// stack and killed the exporter) is refused with an error, on a stack kept
// small enough that a recursive decoder would crash the test.
func TestFrameDeepNesting(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(32 << 20))
	for _, depth := range []int{1, 100, maxGroupDepth - 1, maxGroupDepth, maxGroupDepth + 1, maxGroupDepth + 2, 4 << 20} {
		b := nestedGroups(depth)
		var pf pluginv1.Frame
		want := proto.Unmarshal(b, &pf)
		f := new(Frame)
		err := Codec.Unmarshal(pieces(b, 64<<10), f)
		switch {
		case want == nil && err != nil:
			t.Errorf("depth %d: protobuf decodes it, the frame decoder says %v", depth, err)
		case want != nil && err == nil:
			t.Errorf("depth %d: protobuf refuses it (%v), the frame decoder accepts it", depth, want)
		case err == nil && string(f.Bytes()) != "inside":
			t.Errorf("depth %d: payload lost", depth)
		case err != nil && depth > maxGroupDepth && !strings.Contains(err.Error(), "nested"):
			t.Errorf("depth %d: error %q does not say the nesting is too deep", depth, err)
		}
		f.Free()
	}
	// Unbalanced groups are refused too.
	for name, b := range map[string][]byte{
		"end without start": protowire.AppendTag(nil, 3, protowire.EndGroupType),
		"mismatched end":    protowire.AppendTag(protowire.AppendTag(nil, 3, protowire.StartGroupType), 4, protowire.EndGroupType),
		"never ends":        bytes.Repeat(protowire.AppendTag(nil, 3, protowire.StartGroupType), 50),
	} {
		if err := Codec.Unmarshal(pieces(b, 1), new(Frame)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzDecodeMessage: whatever bytes a peer sends as any message of the
// plugin protocol, in either direction (the host's requests, the plugin's
// answers, frames), decoding never panics, never recurses without bound,
// and accepts whatever protobuf itself accepts.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte{0x0a, 3, 'a', 'b', 'c'}, uint8(0))
	f.Add(nestedGroups(100), uint8(1))
	f.Add(nestedGroups(maxGroupDepth+1), uint8(2))
	f.Add(bytes.Repeat([]byte{0x12, 0x02, 0x0a, 0x00}, 64), uint8(3))
	f.Add(append(bytes.Repeat([]byte{0x12, 0x80, 0x01}, 40), 0), uint8(4))
	newMessage := []func() proto.Message{
		func() proto.Message { return &pluginv1.CallRequest{} },
		func() proto.Message { return &pluginv1.CallResponse{} },
		func() proto.Message { return &pluginv1.ConfigureRequest{} },
		func() proto.Message { return &pluginv1.ConfigureResponse{} },
		func() proto.Message { return &pluginv1.DescribeResponse{} },
		func() proto.Message { return &pluginv1.Frame{} },
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		m := newMessage[int(which)%len(newMessage)]()
		want := proto.Unmarshal(b, proto.Clone(m))
		target := &decodeTarget{m: m}
		if err := Codec.Unmarshal(pieces(b, 7), target); err != nil {
			t.Fatalf("the codec returned %v instead of keeping it", err)
		}
		if (want == nil) != (target.err == nil) {
			t.Fatalf("%T %x: protobuf says %v, the codec %v", m, b, want, target.err)
		}
		fr := new(Frame)
		_ = Codec.Unmarshal(pieces(b, int(which)+1), fr) // must not panic or overflow
		fr.Free()
	})
}
