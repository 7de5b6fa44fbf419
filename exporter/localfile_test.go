package exporter_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// flashLocal writes the file at img to write_stream of path with
// client.StreamFile, streaming its bytes itself when the exporter does not
// take the file, and returns the driver's result and whether the file was
// handed over.
func flashLocal(t *testing.T, c *client.Client, uuid, img string) (result map[string]any, local bool) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, local, err := c.StreamFile(t.Context(), uuid, "write_stream", f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !local {
		if _, err := io.Copy(s, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(s)
	for sc.Scan() {
		var r struct {
			Result map[string]any `json:"result"`
			Error  string         `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("write_stream answered %q", sc.Text())
		}
		if r.Error != "" {
			t.Fatalf("write_stream: %s", r.Error)
		}
		if r.Result != nil {
			return r.Result, local
		}
	}
	t.Fatalf("write_stream ended without a result: %v", sc.Err())
	return nil, false
}

// TestLocalFileFastPath: a client on the exporter's machine hands its image
// over (SCM_RIGHTS) and the storage driver reads it itself; without the
// exporter's local file socket the client streams, as to any exporter.
func TestLocalFileFastPath(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	rx := start(t, header+"export:\n  flasher: {type: flasher, config: {path: "+disk+"}}\n", []string{"storage"})
	c, err := client.Dial(t.Context(), "unix://"+rx.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uuid := uuidOf(t, rx.c, "flasher")
	img := make([]byte, 5<<20+77)
	_, _ = rand.Read(img)
	src := filepath.Join(dir, "src.img")
	if err := os.WriteFile(src, img, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	want := hex.EncodeToString(sum[:])

	res, local := flashLocal(t, c, uuid, src)
	if !local || exporter.LocalFilesTaken(rx.e) != 1 {
		t.Fatalf("local = %v, streams taken as files = %d; want the file handed over and taken by the driver", local, exporter.LocalFilesTaken(rx.e))
	}
	if res["sha256"] != want {
		t.Fatalf("result %v; want sha256 %s", res, want)
	}
	if got, _ := os.ReadFile(disk); !bytes.Equal(got, img) {
		t.Fatalf("the device holds %d bytes; want the %d of the image", len(got), len(img))
	}

	// No local file socket (an older exporter): the client streams.
	if err := os.Remove(rx.sock + exporter.LocalFileSocketSuffix); err != nil {
		t.Fatal(err)
	}
	res, local = flashLocal(t, c, uuid, src)
	if local || res["sha256"] != want || exporter.LocalFilesTaken(rx.e) != 1 {
		t.Fatalf("without the socket: local = %v, result %v, taken %d; want a streamed write with sha256 %s", local, res, exporter.LocalFilesTaken(rx.e), want)
	}
}

// TestLocalFileToOldPlugin: a plugin that does not take files (one written
// without the SDK, of protocol minor 0) gets the handed-over file's bytes
// from the exporter as frames.
func TestLocalFileToOldPlugin(t *testing.T) {
	dir := t.TempDir()
	if err := os.Link(testbin.Build(t, "./internal/testplugins/plainproto"), filepath.Join(dir, "jumpwire-driver-plain")); err != nil {
		t.Fatal(err)
	}
	rx := start(t, header+"export:\n  plain:\n    type: plain\n", nil, func(o *exporter.Options) {
		o.PluginDirs = append(o.PluginDirs, dir)
	})
	c, err := client.Dial(t.Context(), "unix://"+rx.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("jumpwire "), 300_000)
	src := filepath.Join(dir, "src.txt")
	if err := os.WriteFile(src, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, local, err := c.StreamFile(t.Context(), uuidOf(t, rx.c, "plain"), "upper", f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !local {
		t.Fatal("the exporter did not take the file")
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.ToUpper(payload)) {
		t.Fatalf("the driver sent back %d bytes; want the file's %d in upper case", len(got), len(payload))
	}
	if n := exporter.LocalFilesTaken(rx.e); n != 0 {
		t.Fatalf("%d streams taken as files by a plugin that cannot", n)
	}
}
