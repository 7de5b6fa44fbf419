package storage_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestReadDownload: read(handle) on a storage mux and dump(handle, null) on
// a flasher send the device's bytes to the client, with their sha256.
func TestReadDownload(t *testing.T) {
	img := image(t, 3<<20+11)
	for _, tc := range []struct {
		typ    string
		method string
		args   []any
	}{
		{"mux", "read", nil},
		{"flasher", "dump", []any{nil}},
		{"flasher partition root", "dump", []any{"root"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			typ := storage.Flasher
			if tc.typ == "mux" {
				typ = storage.MuxFlasher
			}
			d := sdktest.Start(t, typ, map[string]any{"path": path})
			if tc.typ == "mux" {
				if _, err := d.Call(t.Context(), "host"); err != nil {
					t.Fatal(err)
				}
			}
			var got bytes.Buffer
			handle, wait, err := d.Download(t.Context(), &got)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Call(t.Context(), tc.method, append([]any{handle}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if err := wait(); err != nil {
				t.Fatalf("download: %v", err)
			}
			if !bytes.Equal(got.Bytes(), img) {
				t.Fatalf("the client got %d bytes; want the %d of the device", got.Len(), len(img))
			}
			if m := res.(map[string]any); m["sha256"] != sum(img) || m["bytes"] != float64(len(img)) {
				t.Fatalf("%s answered %v; want %d bytes with sha256 %s", tc.method, res, len(img), sum(img))
			}
		})
	}
}

// TestReadRefusedOnTheDUT: read(handle) while switched to the DUT is
// refused as write is, and the client's download ends incomplete.
func TestReadRefusedOnTheDUT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, image(t, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	d := sdktest.Start(t, storage.Mux, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "dut"); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	handle, wait, err := d.Download(t.Context(), &got)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Call(t.Context(), "read", handle)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "switched to the DUT; call host() before reading") {
		t.Fatalf("read on the DUT: %v; want FAILED_PRECONDITION saying to call host()", err)
	}
	if err := wait(); err == nil || got.Len() != 0 {
		t.Fatalf("the refused read's download: %d bytes, %v; want nothing and an error", got.Len(), err)
	}
}

// TestDumpBadPartition: dump to a partition the device does not have.
func TestDumpBadPartition(t *testing.T) {
	d := sdktest.Start(t, storage.Flasher, map[string]any{"path": filepath.Join(t.TempDir(), "disk.img")})
	handle, wait, err := d.Download(t.Context(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(t.Context(), "dump", handle, "boot"); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "single partition") {
		t.Fatalf("dump of partition boot: %v; want INVALID_ARGUMENT", err)
	}
	if err := wait(); err == nil {
		t.Fatal("the refused dump's download ended as complete")
	}
}

// TestReadClientGoesAway: a client that goes away mid-read fails the read
// and leaves the device and its state as they were; the next read works.
func TestReadClientGoesAway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	img := image(t, 32<<20)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	d := sdktest.Start(t, storage.Flasher, map[string]any{"path": path})
	before := statusOf(t, d)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	handle, _, err := d.Download(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan error, 1)
	go func() {
		_, err := d.Call(t.Context(), "dump", handle, nil)
		called <- err
	}()
	if _, err := io.ReadFull(pr, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = pr.Close()
	if err := <-called; status.Code(err) != codes.Unavailable {
		t.Fatalf("dump to a client that went away: %v; want UNAVAILABLE", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, img) {
		t.Fatal("the device changed")
	}
	if after := statusOf(t, d); after["complete"] != before["complete"] || after["busy"] != nil {
		t.Fatalf("status %v after the broken read; want it as before (%v), not busy", after, before)
	}
	var got bytes.Buffer
	h2, wait, err := d.Download(t.Context(), &got)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(t.Context(), "dump", h2, nil); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil || !bytes.Equal(got.Bytes(), img) {
		t.Fatalf("the next dump: %d bytes, %v", got.Len(), err)
	}
}
