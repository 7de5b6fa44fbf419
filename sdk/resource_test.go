package sdk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/internal/harness"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sink is a driver that reads uploads: flash answers with what it read.
type sink struct {
	sdk.Base
	readErr chan error // what a read that failed returned, for tests that break uploads off
}

type digest struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Target string `json:"target"`
}

func (s *sink) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("flash", func(ctx context.Context, image sdk.Resource, target *string) (digest, error) {
			if _, known := image.Size(); known {
				return digest{}, errors.New("an upload from a client has no size")
			}
			h := sha256.New()
			n, err := io.Copy(h, image)
			if err != nil {
				select {
				case s.readErr <- err:
				default:
				}
				return digest{}, err
			}
			d := digest{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
			if target != nil {
				d.Target = *target
			}
			return d, nil
		}, "Read an image"),
		sdk.Export("ignore", func(ctx context.Context, image sdk.Resource) error { return nil }, "Read nothing"),
	}
}

func TestResourceUpload(t *testing.T) {
	t.Parallel()
	d := sdktest.Start(t, driverType("sink", &sink{}), nil)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB, more than any window
	sum := sha256.Sum256(data)
	want := map[string]any{"size": float64(len(data)), "sha256": hex.EncodeToString(sum[:]), "target": "emmc"}

	t.Run("upload first", func(t *testing.T) {
		handle, wait, err := d.Upload(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Call(ctx, "flash", handle, "emmc")
		if err != nil {
			t.Fatal(err)
		}
		if !equalMaps(got, want) {
			t.Errorf("flash = %v, want %v", got, want)
		}
		if err := wait(); err != nil {
			t.Errorf("upload: %v", err)
		}
	})
	t.Run("call first", func(t *testing.T) {
		// The call waits for its upload: open the stream only once the
		// call is under way.
		pr, pw := io.Pipe()
		handle, wait, err := d.Upload(ctx, pr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _ = pw.Write(data)
			pw.Close()
		}()
		got, err := d.Call(ctx, "flash", handle, "emmc")
		if err != nil || !equalMaps(got, want) {
			t.Errorf("flash = %v, %v; want %v", got, err, want)
		}
		if err := wait(); err != nil {
			t.Errorf("upload: %v", err)
		}
	})
	t.Run("method reads nothing", func(t *testing.T) {
		handle, wait, err := d.Upload(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Call(ctx, "ignore", handle); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Errorf("an upload the method did not read ends when the method returns; got %v", err)
		}
	})
}

// brokenReader yields n bytes, then fails as a client that went away.
type brokenReader struct{ n int }

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("client went away")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestResourceBrokenOff(t *testing.T) {
	t.Parallel()
	s := &sink{readErr: make(chan error, 1)}
	d := sdktest.Start(t, driverType("sink", s), nil)
	ctx := t.Context()
	handle, wait, err := d.Upload(ctx, &brokenReader{n: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(ctx, "flash", handle, nil); err == nil {
		t.Fatal("flash of an upload that broke off succeeded")
	}
	if err := <-s.readErr; !errors.Is(err, sdk.ErrUploadIncomplete) {
		t.Errorf("the driver's read failed with %v, want ErrUploadIncomplete", err)
	}
	if err := wait(); err == nil || !strings.Contains(err.Error(), "client went away") {
		t.Errorf("upload: %v", err)
	}
}

// holder reads an upload until the upload fails, saying when it has read
// a first byte.
type holder struct {
	sdk.Base
	reading chan struct{}
	readErr chan error
}

func (h *holder) Exports() []sdk.Method {
	return []sdk.Method{sdk.Export("hold", func(ctx context.Context, image sdk.Resource) error {
		if _, err := io.ReadFull(image, make([]byte, 1)); err != nil {
			return err
		}
		close(h.reading)
		_, err := io.Copy(io.Discard, image)
		h.readErr <- err
		return err
	}, "Read an upload until it fails")}
}

// stallingReader yields one byte, then waits until done is closed, and
// ends: a client that keeps its upload open and has nothing more to send.
type stallingReader struct {
	sent bool
	done chan struct{}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		p[0] = 'x'
		return 1, nil
	}
	<-r.done
	return 0, io.EOF
}

// A method's reads end with its call: a client that keeps its upload open
// and sends nothing more does not hold the method once the call is
// cancelled, as the exporter cancels it when the client goes away.
func TestResourceCallEnds(t *testing.T) {
	t.Parallel()
	h := &holder{reading: make(chan struct{}), readErr: make(chan error, 1)}
	d := sdktest.Start(t, driverType("holder", h), nil)
	client := &stallingReader{done: make(chan struct{})}
	defer close(client.done)
	handle, _, err := d.Upload(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	cancelMidCall(t, d, "hold", handle, func() { <-h.reading }, h.readErr, sdk.ErrUploadIncomplete)
}

// cancelMidCall calls method with the resource handle, waits until busy
// returns (the method reads or writes the resource), cancels the call, and
// checks that the method's read or write, which it sends on failed, failed
// with want, and that the call ended CANCELED.
func cancelMidCall(t *testing.T, d *sdktest.Instance, method string, handle map[string]any, busy func(), failed <-chan error, want error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	called := make(chan error, 1)
	go func() {
		_, err := d.Call(ctx, method, handle)
		called <- err
	}()
	busy()
	cancel()
	select {
	case err := <-failed:
		if !errors.Is(err, want) {
			t.Errorf("the method's read or write: %v, want %v", err, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("the method's read or write did not return after its call ended")
	}
	if err := <-called; status.Code(err) != codes.Canceled {
		t.Errorf("call: %v, want CANCELED", err)
	}
}

func TestResourceBadHandles(t *testing.T) {
	t.Parallel()
	d := sdktest.Start(t, driverType("sink", &sink{}), nil)
	tests := []struct {
		name string
		arg  any
		code codes.Code
		msg  string
	}{
		{"string", "image.bin", codes.InvalidArgument, `flash: argument 1: expected a resource handle`},
		{"wrong kind", map[string]any{"kind": "file", "uuid": "x"}, codes.InvalidArgument, `expected a resource handle {"kind": "client_stream"`},
		{"presigned", map[string]any{"kind": "presigned_request", "url": "http://x", "method": "GET", "headers": map[string]any{}},
			codes.Unimplemented, "presigned-request resources"},
		{"still encoded", map[string]any{"kind": "client_stream", "uuid": "x", "x_jmp_content_encoding": "gzip"},
			codes.InvalidArgument, "still gzip-encoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Call(t.Context(), "flash", tt.arg, nil)
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Errorf("flash(%v) = %v; want %v containing %q", tt.arg, err, tt.code, tt.msg)
			}
		})
	}
	t.Run("no such upload", func(t *testing.T) {
		// Nothing uploads it: the call waits for it until its deadline.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := d.Call(ctx, "flash", map[string]any{"kind": "client_stream", "uuid": "nobody"}, nil)
		if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Canceled {
			t.Errorf("flash of an upload that never comes = %v, want the deadline", err)
		}
	})
}

type variadicResources struct{ sdk.Base }

func (variadicResources) Exports() []sdk.Method {
	return []sdk.Method{sdk.Export("flash", func(context.Context, ...sdk.Resource) error { return nil }, "")}
}

func TestResourceNotVariadic(t *testing.T) {
	t.Parallel()
	_, err := harness.NewServer(sdk.Plugin{Drivers: []sdk.Type{driverType("v", variadicResources{})}}, nil)
	if err == nil || !strings.Contains(err.Error(), "a variadic parameter cannot be a Resource") {
		t.Errorf("NewServer = %v", err)
	}
}

func equalMaps(got any, want map[string]any) bool {
	m, ok := got.(map[string]any)
	if !ok || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}
