package storage_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
)

func image(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// writeStream sends img in 256 KiB frames and reads the replies.
func writeStream(t *testing.T, d *sdktest.Instance, img []byte) (progress []storage.Progress, last storage.Reply) {
	t.Helper()
	conn, err := d.Stream(t.Context(), "write_stream")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for b := img; len(b) > 0; {
			n := min(len(b), 256<<10)
			if _, err := conn.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		_ = conn.CloseWrite()
	}()
	return readReplies(t, conn)
}

// readReplies reads write_stream's JSON lines: the progress reports, and
// the last line, its result.
func readReplies(t *testing.T, conn io.Reader) (progress []storage.Progress, last storage.Reply) {
	t.Helper()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var r storage.Reply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("write_stream answered %q: %v", sc.Text(), err)
		}
		if r.Progress != nil {
			progress = append(progress, *r.Progress)
			continue
		}
		last = r
	}
	return progress, last
}

func statusOf(t *testing.T, d *sdktest.Instance) map[string]any {
	t.Helper()
	v, err := d.Call(t.Context(), "status")
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

func TestWriteThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAA}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": path})
	ctx := t.Context()
	if _, err := d.Call(ctx, "host"); err != nil {
		t.Fatal(err)
	}
	img := image(t, 3<<20+123)
	progress, last := writeStream(t, d, img)
	if last.Error != "" || last.Result == nil {
		t.Fatalf("write_stream ended with %+v; want a result", last)
	}
	if last.Result.Bytes != int64(len(img)) || last.Result.SHA256 != sum(img) {
		t.Fatalf("result %+v; want %d bytes with sha256 %s", last.Result, len(img), sum(img))
	}
	if n := len(progress); n == 0 || progress[n-1].Bytes != int64(len(img)) {
		t.Fatalf("progress %+v; want a final report of %d bytes", progress, len(img))
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("the image file holds %d bytes (err %v); want exactly the %d written", len(got), err, len(img))
	}
	st := statusOf(t, d)
	if st["complete"] != true || st["sha256"] != sum(img) || st["mux"] != "host" {
		t.Fatalf("status %v; want complete, the sha256, mux host", st)
	}
	conn, err := d.Stream(ctx, "read_stream")
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(back, img) {
		t.Fatalf("read_stream gave %d bytes (err %v); want the image", len(back), err)
	}
}

func TestGzipIsDecompressed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
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
	_, last := writeStream(t, d, gz.Bytes())
	if last.Result == nil || last.Result.SHA256 != sum(img) {
		t.Fatalf("write_stream of a gzip image ended with %+v; want the decompressed sha256 %s", last, sum(img))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, img) {
		t.Fatalf("the file holds %d bytes; want the %d decompressed bytes", len(got), len(img))
	}
}

func TestWriteRefusedWhileSwitchedToTheDUT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	old := []byte("the board's current image")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	d := sdktest.Start(t, storage.Mux, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "dut"); err != nil {
		t.Fatal(err)
	}
	_, last := writeStream(t, d, image(t, 1<<20))
	if !strings.Contains(last.Error, "switched to the DUT; call host() before writing") {
		t.Fatalf("write while on the DUT ended with %+v; want a refusal", last)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Fatal("a refused write changed the device")
	}
}

// TestClientGoneMidWrite: the device ends up marked not fully written.
func TestClientGoneMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": path})
	if _, err := d.Call(t.Context(), "host"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	conn, err := d.Stream(ctx, "write_stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(image(t, 2<<20)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := statusOf(t, d); st["busy"] != "write"; st = statusOf(t, d) {
		if time.Now().After(deadline) {
			t.Fatalf("the write never started: %v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // the client goes away without half-closing
	var st map[string]any
	for st = statusOf(t, d); st["busy"] != nil; st = statusOf(t, d) {
		if time.Now().After(deadline) {
			t.Fatalf("the write never ended: %v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st["complete"] != false || st["error"] == "" || st["error"] == nil {
		t.Fatalf("status after the client left: %v; want complete false with the error", st)
	}
	// A new process of the driver (after a crash or in the next session) reads the same.
	d2 := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": path})
	if st := statusOf(t, d2); st["complete"] != false {
		t.Fatalf("a new instance sees %v; want the device still marked not fully written", st)
	}
	s, err := storage.ReadState(storage.StatePath(path))
	if err != nil || s.Complete {
		t.Fatalf("ReadState = %+v, %v; want incomplete", s, err)
	}
}

func TestOtherCompressionsRefused(t *testing.T) {
	d := sdktest.Start(t, storage.Flasher, map[string]any{"path": filepath.Join(t.TempDir(), "disk.img")})
	_, last := writeStream(t, d, append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, image(t, 1000)...))
	if !strings.Contains(last.Error, "decompresses gzip only") {
		t.Fatalf("an xz image ended with %+v; want a clear refusal", last)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"relative", map[string]any{"path": "disk.img"}, "path: must be an absolute path"},
		{"no directory", map[string]any{"path": "/nonexistent/dir/disk.img"}, "path: the directory of"},
		{"a directory", map[string]any{"path": dir}, "is a directory"},
		{"unknown key", map[string]any{"path": dir + "/x", "size": 5}, "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sdktest.Configure(t, storage.Mux, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestNoPath: configured without path, as upstream's mock types are, an
// instance keeps its bytes in a temporary image of its own, removed when
// it closes.
func TestNoPath(t *testing.T) {
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{})
	st := statusOf(t, d)
	path, _ := st["path"].(string)
	if !strings.HasPrefix(filepath.Base(filepath.Dir(path)), "jumpwire-storage-") {
		t.Fatalf("status path %q; want a temporary image", path)
	}
	if _, err := d.Call(t.Context(), "host"); err != nil {
		t.Fatal(err)
	}
	if _, last := writeStream(t, d, image(t, 4096)); last.Error != "" {
		t.Fatalf("write to the temporary image: %+v", last)
	}
	if err := d.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("the temporary image's directory is still there after Close: %v", err)
	}
}

// The types report upstream's client classes.
func TestLabels(t *testing.T) {
	for typ, want := range map[*sdk.Type]string{
		&storage.Mux:        "jumpstarter_driver_opendal.client.StorageMuxClient",
		&storage.Flasher:    "jumpstarter_driver_opendal.client.FlasherClient",
		&storage.MuxFlasher: "jumpstarter_driver_opendal.client.StorageMuxFlasherClient",
	} {
		if typ.Client != want {
			t.Errorf("%s: client %q, want %q", typ.Name, typ.Client, want)
		}
	}
}
