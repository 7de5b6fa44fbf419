package storage_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
)

// writeLocal hands the file at img over to write_stream as a local file
// (as the exporter does for a client on its machine) and reads the replies.
func writeLocal(t *testing.T, d *sdktest.Instance, img string) (progress []storage.Progress, last storage.Reply) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, taken, err := d.StreamFile(t.Context(), "write_stream", f)
	if err != nil {
		t.Fatal(err)
	}
	if !taken {
		t.Fatal("write_stream did not take the local file")
	}
	_ = conn.CloseWrite() // a driver that refuses may have ended the stream already
	return readReplies(t, conn)
}

func TestWriteLocalFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.img")
	// What the device held before is longer than the image: the image
	// file ends up exactly the image.
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAA}, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "host"); err != nil {
		t.Fatal(err)
	}
	img := image(t, 2*16<<20+12345) // more than two kernel copy chunks
	src := filepath.Join(dir, "src.img")
	if err := os.WriteFile(src, img, 0o644); err != nil {
		t.Fatal(err)
	}
	progress, last := writeLocal(t, d, src)
	if last.Result == nil || last.Result.Bytes != int64(len(img)) || last.Result.SHA256 != sum(img) {
		t.Fatalf("write_stream of a local file ended with %+v; want %d bytes with sha256 %s", last, len(img), sum(img))
	}
	if n := len(progress); n == 0 || progress[n-1].Bytes != int64(len(img)) {
		t.Fatalf("progress %+v; want a final report of %d bytes", progress, len(img))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, img) {
		t.Fatalf("the image file holds %d bytes; want exactly the %d written", len(got), len(img))
	}
	if st := statusOf(t, d); st["complete"] != true || st["sha256"] != sum(img) {
		t.Fatalf("status %v; want complete with the sha256", st)
	}
	// The client's file is left as it was.
	if got, _ := os.ReadFile(src); !bytes.Equal(got, img) {
		t.Fatal("the client's image changed")
	}
}

func TestWriteLocalGzipFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.img")
	d := sdktest.Start(t, storage.Flasher, map[string]any{"path": path})
	img := append(image(t, 1<<20), bytes.Repeat([]byte("jumpwire"), 1<<18)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(img); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src.img.gz")
	if err := os.WriteFile(src, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, last := writeLocal(t, d, src)
	if last.Result == nil || last.Result.SHA256 != sum(img) {
		t.Fatalf("write_stream of a local gzip file ended with %+v; want the decompressed sha256 %s", last, sum(img))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, img) {
		t.Fatalf("the file holds %d bytes; want the %d decompressed bytes", len(got), len(img))
	}
}

func TestWriteLocalFileRefusedWhileSwitchedToTheDUT(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.img")
	old := []byte("the board's current image")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	d := sdktest.Start(t, storage.Mux, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "dut"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src.img")
	if err := os.WriteFile(src, image(t, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	_, last := writeLocal(t, d, src)
	if !strings.Contains(last.Error, "switched to the DUT; call host() before writing") {
		t.Fatalf("write while on the DUT ended with %+v; want a refusal", last)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Fatal("a refused write changed the device")
	}
}
