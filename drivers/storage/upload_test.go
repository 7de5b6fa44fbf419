package storage_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestFlashUpload: flash(handle, null) writes an upload, gzip decompressed.
func TestFlashUpload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	d := sdktest.Start(t, storage.Flasher, map[string]any{"path": path})
	img := image(t, 2<<20+7)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(img)
	_ = zw.Close()
	for name, upload := range map[string][]byte{"raw": img, "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			handle, wait, err := d.Upload(t.Context(), bytes.NewReader(upload))
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Call(t.Context(), "flash", handle, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			if m := res.(map[string]any); m["sha256"] != sum(img) || m["bytes"] != float64(len(img)) {
				t.Fatalf("flash answered %v; want %d bytes with sha256 %s", res, len(img), sum(img))
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, img) {
				t.Fatalf("the file holds %d bytes; want the %d of the image", len(got), len(img))
			}
		})
	}
	handle, _, err := d.Upload(t.Context(), bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(t.Context(), "flash", handle, "boot"); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "single target") {
		t.Fatalf("flash to target boot: %v; want INVALID_ARGUMENT", err)
	}
}

// TestWriteUploadRefusedOnTheDUT: write(handle) while switched to the DUT.
func TestWriteUploadRefusedOnTheDUT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "dut"); err != nil {
		t.Fatal(err)
	}
	handle, _, err := d.Upload(t.Context(), bytes.NewReader(image(t, 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Call(t.Context(), "write", handle)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "switched to the DUT; call host() before writing") {
		t.Fatalf("write on the DUT: %v; want FAILED_PRECONDITION saying to call host()", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused write created or touched the device: %v", err)
	}
}

// brokenReader yields n bytes, then fails as a client that goes away.
type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errors.New("client gone")
	}
	k := min(len(p), b.n)
	b.n -= k
	return k, nil
}

// TestWriteUploadBrokenOff: an upload that breaks off leaves the device
// marked not fully written.
func TestWriteUploadBrokenOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "host"); err != nil {
		t.Fatal(err)
	}
	handle, _, err := d.Upload(t.Context(), &brokenReader{n: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Call(t.Context(), "write", handle)
	if err == nil || !strings.Contains(err.Error(), "marked not fully written") {
		t.Fatalf("write of a broken upload: %v; want an error saying the device is marked not fully written", err)
	}
	st := statusOf(t, d)
	if st["complete"] != false {
		t.Fatalf("status %v; want complete false", st)
	}
}
