package exporter_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// uploadRig is an exporter serving the sink test driver, which reads an
// upload and answers with its size and sha256.
type uploadRig struct {
	c    jumpstarterv1.ExporterServiceClient
	r    jumpstarterv1.RouterServiceClient
	sink string
}

func serveSink(t testing.TB) *uploadRig {
	t.Helper()
	dir := testbin.PluginDir(t)
	if err := os.Link(testbin.Build(t, "./internal/testplugins/sink"), filepath.Join(dir, "jumpwire-driver-sink")); err != nil {
		t.Fatal(err)
	}
	rx := start(t, header+"export:\n  sink: {type: compat_sink.Sink}\n", nil, func(o *exporter.Options) {
		o.PluginDirs = []string{dir}
	})
	return &uploadRig{c: rx.c, r: rx.r, sink: uuidOf(t, rx.c, "sink")}
}

// upload opens a resource stream as upstream's client does and returns the
// stream and the handle from its initial metadata, as a call argument.
func (rig *uploadRig) upload(ctx context.Context, t testing.TB, encoding string) (jumpstarterv1.RouterService_StreamClient, *structpb.Value, metadata.MD) {
	t.Helper()
	enc := "null"
	if encoding != "" {
		enc = fmt.Sprintf("%q", encoding)
	}
	req := fmt.Sprintf(`{"kind":"resource","uuid":%q,"x_jmp_content_encoding":%s}`, rig.sink, enc)
	s, err := rig.r.Stream(metadata.AppendToOutgoingContext(ctx, "request", req))
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.Header()
	if err != nil {
		t.Fatalf("resource stream headers: %v", err)
	}
	var handle map[string]any
	if v := md.Get("resource"); len(v) != 1 || json.Unmarshal([]byte(v[0]), &handle) != nil {
		t.Fatalf("initial metadata %v: want one resource handle (JSON)", md)
	}
	if handle["kind"] != "client_stream" || handle["uuid"] == "" {
		t.Fatalf("handle %v", handle)
	}
	hv, err := structpb.NewValue(handle)
	if err != nil {
		t.Fatal(err)
	}
	return s, hv, md
}

// send sends data in frames of up to 64 KiB, then GOAWAY, as upstream's
// client does, and waits for the exporter to end the stream (GOAWAY, then
// ABORTED).
func send(s jumpstarterv1.RouterService_StreamClient, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		if err := s.Send(&jumpstarterv1.StreamRequest{Payload: data[:n]}); err != nil {
			return err
		}
		data = data[n:]
	}
	if err := s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY}); err != nil {
		return err
	}
	_ = s.CloseSend()
	_, err := readAll(s)
	return err
}

// image is n bytes that compress, differently each run.
func image(n int) []byte {
	r := rand.New(rand.NewPCG(rand.Uint64(), 0))
	blocks := make([][]byte, 32)
	for i := range blocks {
		blocks[i] = make([]byte, 1024)
		for j := range blocks[i] {
			blocks[i][j] = byte(r.Uint32())
		}
	}
	var b bytes.Buffer
	for b.Len() < n {
		b.Write(blocks[r.IntN(len(blocks))])
	}
	return b.Bytes()[:n]
}

func encode(t *testing.T, encoding string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch encoding {
	case "":
		return data
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zstd":
		w, err = zstd.NewWriter(&b)
	case "xz":
		w, err = xz.NewWriter(&b)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestUploads: an upload reaches the driver named by its handle, decoded:
// the driver reads exactly the bytes the client had, whatever the encoding
// it travelled in, and the exporter said it accepts that encoding. (bz2 is
// covered by the compatibility suite: Go has no bzip2 encoder.)
func TestUploads(t *testing.T) {
	rig := serveSink(t)
	data := image(3 << 20)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	for _, enc := range []string{"", "gzip", "zstd", "xz"} {
		t.Run("encoding "+enc, func(t *testing.T) {
			s, handle, md := rig.upload(t.Context(), t, enc)
			if got := md.Get("x_jmp_accept_encoding"); (enc == "" && len(got) != 0) || (enc != "" && (len(got) != 1 || got[0] != enc)) {
				t.Errorf("x_jmp_accept_encoding = %v for an upload in %q", got, enc)
			}
			sent := make(chan error, 1)
			go func() { sent <- send(s, encode(t, enc, data)) }()
			v, err := call(t, rig.c, rig.sink, "flash", handle, structpb.NewStringValue("emmc"))
			if err != nil {
				t.Fatalf("flash: %v", err)
			}
			got := v.(map[string]any)
			if got["sha256"] != want || got["size"] != float64(len(data)) || got["target"] != "emmc" {
				t.Errorf("flash = %v, want size %d sha256 %s", got, len(data), want)
			}
			if err := <-sent; err != nil {
				t.Errorf("upload stream: %v", err)
			}
		})
	}
}

// TestUploadStreamingCall: a streaming method reads an upload too; its
// results arrive while the upload flows.
func TestUploadStreamingCall(t *testing.T) {
	rig := serveSink(t)
	data := image(4<<20 + 5)
	s, handle, _ := rig.upload(t.Context(), t, "zstd")
	sent := make(chan error, 1)
	go func() { sent <- send(s, encode(t, "zstd", data)) }()
	st, err := rig.c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{
		Uuid: rig.sink, Method: "flash_progress", Args: []*structpb.Value{handle}})
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("flash_progress: %v", err)
		}
		got = append(got, r.Result.GetNumberValue())
	}
	want := []float64{1 << 20, 2 << 20, 3 << 20, 4 << 20, 4<<20 + 5}
	if !slices.Equal(got, want) {
		t.Errorf("flash_progress streamed %v, want %v", got, want)
	}
	if err := <-sent; err != nil {
		t.Errorf("upload stream: %v", err)
	}
}

// TestUploadHandles: a handle serves one call, in its session; a handle
// no upload made is refused clearly; an encoding the exporter cannot
// decode is refused when the stream opens; a corrupt upload fails the call
// saying so.
func TestUploadHandles(t *testing.T) {
	rig := serveSink(t)
	t.Run("unknown handle", func(t *testing.T) {
		h, _ := structpb.NewValue(map[string]any{"kind": "client_stream", "uuid": "9f3e2c1a-0000-4000-8000-000000000000", "x_jmp_content_encoding": nil})
		_, err := call(t, rig.c, rig.sink, "flash", h, structpb.NewNullValue())
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no upload 9f3e2c1a-0000-4000-8000-000000000000 in this session") {
			t.Errorf("flash with a handle no client uploaded = %v", err)
		}
	})
	t.Run("used once", func(t *testing.T) {
		s, handle, _ := rig.upload(t.Context(), t, "")
		go func() { _ = send(s, []byte("image")) }()
		if _, err := call(t, rig.c, rig.sink, "flash", handle, structpb.NewNullValue()); err != nil {
			t.Fatal(err)
		}
		if _, err := call(t, rig.c, rig.sink, "flash", handle, structpb.NewNullValue()); status.Code(err) != codes.InvalidArgument {
			t.Errorf("second flash with the same handle = %v, want INVALID_ARGUMENT", err)
		}
	})
	t.Run("unknown encoding", func(t *testing.T) {
		req := fmt.Sprintf(`{"kind":"resource","uuid":%q,"x_jmp_content_encoding":"lz4"}`, rig.sink)
		s, err := rig.r.Stream(metadata.AppendToOutgoingContext(t.Context(), "request", req))
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `content encoding "lz4" is not supported`) {
			t.Errorf("lz4 upload: %v", err)
		}
	})
	t.Run("dropped at the session's end", func(t *testing.T) {
		s, handle, _ := rig.upload(t.Context(), t, "")
		if r, err := rig.c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{}); err != nil || !r.Success {
			t.Fatalf("EndSession: %v, %v", r, err)
		}
		if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("the upload stream of an ended session ended with %v, want UNAVAILABLE", err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st, err := rig.c.GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{})
			if err == nil && st.Status == jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no fresh session 30s after EndSession: %v, %v", st, err)
			}
		}
		_, err := call(t, rig.c, rig.sink, "flash", handle, structpb.NewNullValue())
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("flash with a handle of the previous session = %v, want INVALID_ARGUMENT", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		s, handle, _ := rig.upload(t.Context(), t, "gzip")
		go func() { _ = send(s, []byte("this is not gzip at all")) }()
		_, err := call(t, rig.c, rig.sink, "flash", handle, structpb.NewNullValue())
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not valid gzip") {
			t.Errorf("flash of a corrupt gzip upload = %v", err)
		}
	})
}

// TestUploadClientGoesAway: a client that goes away mid-upload fails the
// driver's read, and the call says the upload broke off. The client gets
// 16 MiB through first, more than all the windows and frames between it and
// the driver hold (about 2 MiB): the driver is reading when it goes.
func TestUploadClientGoesAway(t *testing.T) {
	rig := serveSink(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, handle, _ := rig.upload(ctx, t, "")
	through := make(chan struct{})
	go func() {
		chunk := make([]byte, 64<<10)
		for sent := 0; ; sent += len(chunk) {
			if sent == 16<<20 {
				close(through)
			}
			if s.Send(&jumpstarterv1.StreamRequest{Payload: chunk}) != nil {
				return
			}
		}
	}()
	called := make(chan error, 1)
	go func() {
		_, err := call(t, rig.c, rig.sink, "flash", handle, structpb.NewNullValue())
		called <- err
	}()
	<-through
	cancel() // the client goes away in the middle of its upload
	if err := <-called; err == nil || !strings.Contains(err.Error(), "broke off") {
		t.Errorf("flash of an upload whose client went away = %v, want it to say the upload broke off", err)
	}
}

// TestUploadToOldPlugin: a plugin whose protocol predates uploads (minor 0)
// is not handed one: the call fails saying why, and the client's upload
// stream ends.
func TestUploadToOldPlugin(t *testing.T) {
	dir := t.TempDir()
	if err := os.Link(testbin.Build(t, "./internal/testplugins/plainproto"), filepath.Join(dir, "jumpwire-driver-plain")); err != nil {
		t.Fatal(err)
	}
	rx := start(t, header+"export:\n  plain:\n    type: plain\n", nil, func(o *exporter.Options) {
		o.PluginDirs = append(o.PluginDirs, dir)
	})
	rig := &uploadRig{c: rx.c, r: rx.r, sink: uuidOf(t, rx.c, "plain")}
	s, handle, _ := rig.upload(t.Context(), t, "")
	_, err := call(t, rig.c, rig.sink, "upper", handle)
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "which has no uploads") {
		t.Errorf("a call passing an upload to a protocol 1.0 plugin = %v", err)
	}
	if _, err := readAll(s); err != nil {
		t.Errorf("upload stream: %v", err)
	}
}

// BenchmarkUpload measures an upload's throughput from a Go client through
// the exporter into the sink driver (which hashes it), in 64 KiB frames as
// upstream's client sends them: the exporter's share of an upload's cost.
func BenchmarkUpload(b *testing.B) {
	rig := serveSink(b)
	chunk := image(64 << 10)
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		s, handle, _ := rig.upload(b.Context(), b, "")
		sent := make(chan error, 1)
		go func() {
			for n := 0; n < size; n += len(chunk) {
				if err := s.Send(&jumpstarterv1.StreamRequest{Payload: chunk}); err != nil {
					sent <- err
					return
				}
			}
			_ = s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY})
			_ = s.CloseSend()
			_, err := readAll(s)
			sent <- err
		}()
		r, err := rig.c.DriverCall(b.Context(), &jumpstarterv1.DriverCallRequest{Uuid: rig.sink, Method: "flash", Args: []*structpb.Value{handle, structpb.NewNullValue()}})
		if err != nil {
			b.Fatal(err)
		}
		if got := r.Result.GetStructValue().GetFields()["size"].GetNumberValue(); got != size {
			b.Fatalf("the driver read %v bytes, want %d", got, size)
		}
		if err := <-sent; err != nil {
			b.Fatal(err)
		}
	}
}
