package sdk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// source is a driver that writes downloads.
type source struct {
	sdk.Base
	data     []byte
	written  atomic.Int64 // bytes the endless method has written
	writeErr chan error   // what a write that failed returned
}

func (s *source) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("dump", func(ctx context.Context, target sdk.Download, partition *string) (int64, error) {
			return io.Copy(target, bytes.NewReader(s.data))
		}, "Write the data"),
		sdk.Export("small", func(ctx context.Context, target sdk.Download) error {
			for _, w := range []string{"one ", "two ", "", "three"} {
				if _, err := target.Write([]byte(w)); err != nil {
					return err
				}
			}
			return nil
		}, "Write a few words, one write each"),
		sdk.Export("half", func(ctx context.Context, target sdk.Download) error {
			if _, err := target.Write(s.data[:len(s.data)/2]); err != nil {
				return err
			}
			return sdk.Errorf(sdk.ErrUnavailable, "the device went away halfway")
		}, "Write half the data, then fail"),
		sdk.Export("endless", func(ctx context.Context, target sdk.Download) error {
			buf := make([]byte, 64<<10)
			for {
				n, err := target.Write(buf)
				s.written.Add(int64(n))
				if err != nil {
					select {
					case s.writeErr <- err:
					default:
					}
					return err
				}
			}
		}, "Write until the client goes away"),
	}
}

func newSource(data []byte) *source {
	return &source{data: data, writeErr: make(chan error, 1)}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	data := make([]byte, 9<<20+123) // more than any window, and not a whole number of frames
	_, _ = rand.Read(data)
	d := sdktest.Start(t, driverType("source", newSource(data)), nil)
	ctx := t.Context()

	t.Run("whole", func(t *testing.T) {
		var got bytes.Buffer
		handle, wait, err := d.Download(ctx, &got)
		if err != nil {
			t.Fatal(err)
		}
		n, err := d.Call(ctx, "dump", handle, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatalf("download: %v", err)
		}
		if n != float64(len(data)) || !bytes.Equal(got.Bytes(), data) {
			t.Errorf("dump wrote %v bytes, the client got %d (equal: %v), want %d", n, got.Len(), bytes.Equal(got.Bytes(), data), len(data))
		}
	})

	t.Run("writes keep their bytes", func(t *testing.T) {
		var got bytes.Buffer
		handle, wait, err := d.Download(ctx, &got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Call(ctx, "small", handle); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if got.String() != "one two three" {
			t.Errorf("got %q", got.String())
		}
	})

	t.Run("a failing method leaves the download incomplete", func(t *testing.T) {
		handle, wait, err := d.Download(ctx, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Call(ctx, "half", handle)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("call: %v, want the driver's UNAVAILABLE", err)
		}
		err = wait()
		if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "went away halfway") {
			t.Errorf("download: %v, want ABORTED naming the method's error", err)
		}
	})
}

func TestDownloadClientGoesAway(t *testing.T) {
	t.Parallel()
	src := newSource(nil)
	d := sdktest.Start(t, driverType("source", src), nil)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	handle, wait, err := d.Download(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan error, 1)
	go func() {
		_, err := d.Call(t.Context(), "endless", handle)
		called <- err
	}()
	if _, err := io.ReadFull(pr, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = pr.Close()
	if err := <-called; err == nil {
		t.Error("the endless method returned no error after its client went away")
	}
	if err := <-src.writeErr; !errors.Is(err, sdk.ErrDownloadIncomplete) {
		t.Errorf("Write: %v, want ErrDownloadIncomplete", err)
	}
	if err := wait(); err == nil {
		t.Error("download: no error after the client went away")
	}
	// The instance serves on.
	var got bytes.Buffer
	h2, wait2, err := d.Download(t.Context(), &got)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(t.Context(), "small", h2); err != nil {
		t.Fatal(err)
	}
	if err := wait2(); err != nil || got.String() != "one two three" {
		t.Errorf("next download: %q, %v", got.String(), err)
	}
}

// A method's writes end with its call: a client that keeps its download
// open and reads no more does not hold the method once the call is
// cancelled, as the exporter cancels it when the client goes away.
func TestDownloadCallEnds(t *testing.T) {
	t.Parallel()
	src := newSource(nil)
	d := sdktest.Start(t, driverType("source", src), nil)
	pr, pw := io.Pipe()
	defer pr.Close()
	handle, _, err := d.Download(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	writing := func() {
		if _, err := io.ReadFull(pr, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	cancelMidCall(t, d, "endless", handle, writing, src.writeErr, sdk.ErrDownloadIncomplete)
}

// A client that does not read holds the driver back: its writes block once
// the flow-control windows are full, and nothing piles up.
func TestDownloadBackpressure(t *testing.T) {
	t.Parallel()
	src := newSource(nil)
	d := sdktest.Start(t, driverType("source", src), nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe() // never read until the end: the client is stuck
	defer pr.Close()
	handle, _, err := d.Download(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = d.Call(ctx, "endless", handle) }()
	const bound = 64 << 20
	last, stableSince := int64(-1), time.Now()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n := src.written.Load()
		if n > bound {
			t.Fatalf("the driver wrote %d bytes to a client that reads nothing", n)
		}
		if n != last {
			last, stableSince = n, time.Now()
			continue
		}
		if n > 0 && time.Since(stableSince) > 300*time.Millisecond {
			return // held back
		}
	}
	t.Fatalf("the driver's writes never stopped (%d bytes)", last)
}

// An exporter of an older protocol drops what a driver writes: the method
// is refused before it runs, with a sentence saying what to upgrade.
func TestDownloadRefusesAnOldExporter(t *testing.T) {
	t.Parallel()
	d := sdktest.Start(t, driverType("source", newSource([]byte("data"))), nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const uuid = "0b8c1f9e-old-exporter"
	s, err := d.RPC.Stream(metadata.AppendToOutgoingContext(ctx, protocol.ResourceHeader, uuid))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil {
		t.Fatal(err)
	}
	_, err = d.Call(ctx, "dump", map[string]any{"kind": "client_stream", "uuid": uuid}, nil)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "upgrade jumpwire") {
		t.Errorf("dump through an old exporter: %v, want FAILED_PRECONDITION asking for an upgrade", err)
	}
}
