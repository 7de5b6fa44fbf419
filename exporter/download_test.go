package exporter_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// testPattern is what the sink driver's dump writes: byte i is i mod 251.
func testPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// download opens a resource stream as upstream's client does for a file it
// writes (nothing to upload: its half ends at once) and returns a channel
// with what arrived on it and how it ended.
type downloaded struct {
	data []byte
	err  error
}

func (rig *uploadRig) download(ctx context.Context, t *testing.T, encoding string) (*structpb.Value, <-chan downloaded) {
	t.Helper()
	s, handle, md := rig.upload(ctx, t, encoding)
	if got := md.Get("x_jmp_accept_encoding"); encoding != "" && (len(got) != 1 || got[0] != encoding) {
		t.Fatalf("x_jmp_accept_encoding = %v for a download in %q: the client would compress itself", got, encoding)
	}
	if err := s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY}); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	out := make(chan downloaded, 1)
	go func() {
		b, err := readAll(s)
		out <- downloaded{b, err}
	}()
	return handle, out
}

func decode(t *testing.T, encoding string, data []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch encoding {
	case "":
		return data
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(data))
	case "zstd":
		r, err = zstd.NewReader(bytes.NewReader(data))
	case "xz":
		r, err = xz.NewReader(bytes.NewReader(data))
	}
	if err != nil {
		t.Fatalf("%s download: %v", encoding, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s download: %v", encoding, err)
	}
	return b
}

// TestDownloads: what a driver writes to a client's resource reaches the
// client whole, in the encoding it asked for, and ends with GOAWAY before
// the call's result; a download the driver leaves incomplete ends with an
// error instead.
func TestDownloads(t *testing.T) {
	rig := serveSink(t)
	const size = 3<<20 + 5
	want := testPattern(size)
	for _, enc := range []string{"", "gzip", "zstd", "xz"} {
		t.Run("encoding "+enc, func(t *testing.T) {
			handle, out := rig.download(t.Context(), t, enc)
			n, err := call(t, rig.c, rig.sink, "dump", handle, structpb.NewNumberValue(size))
			if err != nil {
				t.Fatalf("dump: %v", err)
			}
			if n != float64(size) {
				t.Errorf("dump = %v, want %d", n, size)
			}
			got := <-out
			if got.err != nil {
				t.Fatalf("download stream: %v", got.err)
			}
			if b := decode(t, enc, got.data); !bytes.Equal(b, want) {
				t.Errorf("the client got %d bytes (%d on the wire), not the %d the driver wrote", len(b), len(got.data), size)
			}
		})
	}
	t.Run("bz2 is refused with a sentence", func(t *testing.T) {
		handle, out := rig.download(t.Context(), t, "bz2")
		_, err := call(t, rig.c, rig.sink, "dump", handle, structpb.NewNumberValue(1<<20))
		if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "gzip, xz or zstd") {
			t.Errorf("dump in bz2 = %v, want UNIMPLEMENTED naming the encodings that work", err)
		}
		if got := <-out; got.err == nil {
			t.Error("the bz2 download ended as complete")
		}
	})
	t.Run("a failing driver leaves the download incomplete", func(t *testing.T) {
		handle, out := rig.download(t.Context(), t, "")
		_, err := call(t, rig.c, rig.sink, "dump_fail", handle, structpb.NewNumberValue(4<<20))
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "went away") {
			t.Errorf("dump_fail = %v, want the driver's UNAVAILABLE", err)
		}
		got := <-out
		if got.err == nil || !strings.Contains(got.err.Error(), "before GOAWAY") {
			t.Errorf("the failed download ended with %v; want an error and no GOAWAY", got.err)
		}
	})
}

// TestDownloadClientGoesAway: a client that goes away mid-download fails
// the driver's method, and the driver serves the next download whole.
func TestDownloadClientGoesAway(t *testing.T) {
	rig := serveSink(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, handle, _ := rig.upload(ctx, t, "")
	_ = s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY})
	called := make(chan error, 1)
	go func() {
		_, err := call(t, rig.c, rig.sink, "dump", handle, structpb.NewNumberValue(1<<40))
		called <- err
	}()
	for got := 0; got < 8<<20; {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got += len(m.Payload)
	}
	cancel() // the client goes away in the middle of its download
	if err := <-called; err == nil || !strings.Contains(err.Error(), "broke off") {
		t.Errorf("dump to a client that went away = %v, want it to say the download broke off", err)
	}
	handle, out := rig.download(t.Context(), t, "")
	if _, err := call(t, rig.c, rig.sink, "dump", handle, structpb.NewNumberValue(3<<20)); err != nil {
		t.Fatal(err)
	}
	if got := <-out; got.err != nil || !bytes.Equal(got.data, testPattern(3<<20)) {
		t.Errorf("the next download: %d bytes, %v", len(got.data), got.err)
	}
}
