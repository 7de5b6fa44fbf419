package exporter_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
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
	uuid := uuidOf(t, rx.c, "flasher") // the exporter serves: its local file socket is there
	c, err := client.Dial(t.Context(), "unix://"+rx.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
	plain := uuidOf(t, rx.c, "plain")
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
	s, local, err := c.StreamFile(t.Context(), plain, "upper", f)
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

// TestLocalFileRefusals: the exporter takes only a regular file open for
// reading, with a well-formed token, and a stream naming a token no file
// came with is refused.
func TestLocalFileRefusals(t *testing.T) {
	rx := start(t, header+"export:\n  power: {type: power}\n", nil)
	power := uuidOf(t, rx.c, "power") // the exporter serves: its local file socket is there
	hand := func(token string, f *os.File) string {
		t.Helper()
		conn, err := net.Dial("unix", rx.sock+exporter.LocalFileSocketSuffix)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, _, err := conn.(*net.UnixConn).WriteMsgUnix([]byte(token), unix.UnixRights(int(f.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return line
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if got := hand("0123456789abcdef0123", pr); !strings.Contains(got, "not a regular file") {
		t.Errorf("a pipe: the exporter answered %q; want a refusal", got)
	}
	wo, err := os.OpenFile(filepath.Join(t.TempDir(), "w"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	if got := hand("0123456789abcdef0124", wo); !strings.Contains(got, "not open for reading") {
		t.Errorf("a write-only file: the exporter answered %q; want a refusal", got)
	}
	ro, err := os.Open(rx.file)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := hand("../../etc", ro); !strings.Contains(got, "token") {
		t.Errorf("a bad token: the exporter answered %q; want a refusal", got)
	}
	if got := hand("0123456789abcdef0125", ro); got != "ok\n" {
		t.Errorf("a readable file: the exporter answered %q; want ok", got)
	}
	req := fmt.Sprintf(`{"kind":"driver","uuid":%q,"method":"x"}`, power)
	s, err := rx.r.Stream(metadata.AppendToOutgoingContext(t.Context(), "request", req, exporter.LocalFileHeader, "0123456789abcdef9999"))
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no file was handed over") {
		t.Errorf("a stream with an unknown token: %v; want INVALID_ARGUMENT", err)
	}
}
