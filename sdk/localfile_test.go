package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
)

// fileDriver's "size" answers the size of its stream's local file, or
// "none", then echoes what it reads from the Conn.
type fileDriver struct{}

func (fileDriver) Exports() []sdk.Method {
	return []sdk.Method{sdk.ExportStream("size", func(_ context.Context, conn sdk.Conn) error {
		head := "none\n"
		if f := sdk.LocalFile(conn); f != nil {
			st, err := f.Stat()
			if err != nil {
				return err
			}
			head = fmt.Sprintf("%d\n", st.Size())
		}
		if _, err := io.WriteString(conn, head); err != nil {
			return err
		}
		_, err := io.Copy(conn, conn)
		return err
	}, "Say the local file's size, then echo")}
}

func readAll(t *testing.T, c *sdktest.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLocalFile: a stream whose data the host hands over as a local file
// gives the driver the file (sdk.LocalFile), and Reading the Conn yields
// its bytes; a path the plugin cannot take as a file is refused quietly,
// and the data comes as frames.
func TestLocalFile(t *testing.T) {
	i := sdktest.Start(t, driverType("files", fileDriver{}), nil)
	data := bytes.Repeat([]byte("jumpwire local file "), 100_000)
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, taken, err := i.StreamFile(t.Context(), "size", f)
	if err != nil || !taken {
		t.Fatalf("StreamFile: taken %v, %v; want the file taken", taken, err)
	}
	_ = c.CloseWrite()
	if got, want := readAll(t, c), fmt.Sprintf("%d\n%s", len(data), data); got != want {
		t.Fatalf("the driver answered %d bytes; want the size and the file's %d bytes", len(got), len(data))
	}

	// A directory is no regular file: not taken; the client sends frames.
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	c, taken, err = i.StreamFile(t.Context(), "size", dir)
	if err != nil || taken {
		t.Fatalf("StreamFile of a directory: taken %v, %v; want it refused", taken, err)
	}
	if _, err := c.Write([]byte("as frames")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	if got := readAll(t, c); got != "none\nas frames" {
		t.Fatalf("the driver answered %q; want no local file and the frames echoed", got)
	}

	// A plain stream has no local file.
	c, err = i.Stream(t.Context(), "size")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	if got := readAll(t, c); got != "none\n" {
		t.Fatalf("a plain stream: the driver answered %q; want none", got)
	}
}
