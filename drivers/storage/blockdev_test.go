package storage_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
)

// loopDevice attaches a loop device to a new file of size bytes filled with
// fill, and detaches it when the test ends. It skips the test, saying why,
// where loop devices cannot be had: not root, no losetup, or no free loop
// device (a container without /dev/loop-control).
func loopDevice(t *testing.T, size int, fill byte) (dev, backing string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attaching a loop device needs root")
	}
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Skip("losetup is not installed (util-linux / mount)")
	}
	backing = filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{fill}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(losetup, "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device could be attached (losetup --find --show: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	return dev, backing
}

// sumOf returns the sha256 of the first n bytes of path.
func sumOf(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if got, err := io.CopyN(h, f, n); err != nil {
		t.Fatalf("reading %d bytes of %s: %d read: %v", n, path, got, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestFlashToABlockDevice flashes through the driver onto a real block
// device (a loop device): the device keeps its size, what lies beyond the
// image is untouched, and the bytes read back from the device (and from the
// file behind it, after the driver's flush) are the image's.
func TestFlashToABlockDevice(t *testing.T) {
	const devSize = 8 << 20
	dev, backing := loopDevice(t, devSize, 0xAA)
	state := filepath.Join(t.TempDir(), "state.json")
	d := sdktest.Start(t, storage.MuxFlasher, map[string]any{"path": dev, "state": state})
	if _, err := d.Call(t.Context(), "host"); err != nil {
		t.Fatal(err)
	}

	img := image(t, 5<<20+4096+123) // not a whole number of 1 MiB buffers, nor of sectors
	_, last := writeStream(t, d, img)
	if last.Error != "" || last.Result == nil {
		t.Fatalf("write_stream to %s ended with %+v; want a result", dev, last)
	}
	if last.Result.Bytes != int64(len(img)) || last.Result.SHA256 != sum(img) {
		t.Fatalf("result %+v; want %d bytes with sha256 %s", last.Result, len(img), sum(img))
	}
	if got := sumOf(t, dev, int64(len(img))); got != sum(img) {
		t.Fatalf("the device's first %d bytes have sha256 %s; want the image's %s", len(img), got, sum(img))
	}
	// The device was written as a device: not truncated to the image, and
	// the flush reached the file behind it.
	whole, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) != devSize {
		t.Fatalf("the loop device's file is %d bytes after the write; want its %d", len(whole), devSize)
	}
	if !bytes.Equal(whole[:len(img)], img) {
		t.Fatal("the loop device's file does not hold the image after the write returned")
	}
	if rest := whole[len(img):]; !bytes.Equal(rest, bytes.Repeat([]byte{0xAA}, len(rest))) {
		t.Fatal("the write changed the device beyond the image's end")
	}
	if st := statusOf(t, d); st["complete"] != true || st["sha256"] != sum(img) {
		t.Fatalf("status %v; want complete with the image's sha256", st)
	}

	// A gzip image is decompressed onto the device as well.
	img2 := append(image(t, 1<<20), bytes.Repeat([]byte("jumpwire"), 1<<17)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(img2); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, last := writeStream(t, d, gz.Bytes()); last.Result == nil || last.Result.SHA256 != sum(img2) {
		t.Fatalf("write_stream of a gzip image to %s ended with %+v; want sha256 %s", dev, last, sum(img2))
	}
	if got := sumOf(t, dev, int64(len(img2))); got != sum(img2) {
		t.Fatalf("the device holds sha256 %s after the gzip write; want %s", got, sum(img2))
	}
}

// TestImageLargerThanTheBlockDevice: a block device is not grown; the
// write is refused before it starts.
func TestImageLargerThanTheBlockDevice(t *testing.T) {
	dev, backing := loopDevice(t, 1<<20, 0x55)
	d := sdktest.Start(t, storage.Flasher, map[string]any{"path": dev, "state": filepath.Join(t.TempDir(), "state.json")})
	img := image(t, 1<<20+512)
	_, last := writeStream(t, d, img)
	if last.Result != nil || !strings.Contains(last.Error, "larger than") && !strings.Contains(last.Error, "longer than") {
		t.Fatalf("writing %d bytes to a 1 MiB device ended with %+v; want a refusal naming the size", len(img), last)
	}
	if st, err := os.Stat(backing); err != nil || st.Size() != 1<<20 {
		t.Fatalf("the device's file: %v, %v; want it still 1 MiB", st, err)
	}
}
