package plugins

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestInstall: the exporter runs a private read-only copy, verified by hash,
// which replacing the original does not touch; Close removes it.
func TestInstall(t *testing.T) {
	dir, run := t.TempDir(), filepath.Join(t.TempDir(), "run")
	bin := writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	c := New([]string{dir}, newFake().describe, WithCacheDir(""), WithRuntimeDir(run))
	defer c.Close()
	e, _, err := c.Lookup(t.Context(), "power", Pin{})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := c.Install(t.Context(), e, Pin{})
	if err != nil {
		t.Fatal(err)
	}
	private := filepath.Dir(filepath.Dir(inst.Binary))
	if inst.Source != bin || filepath.Dir(private) != run || filepath.Base(filepath.Dir(inst.Binary)) != e.SHA256 ||
		filepath.Base(inst.Binary) != "jumpwire-driver-power" ||
		!strings.HasPrefix(filepath.Base(private), "plugins-"+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("installed %+v", inst)
	}
	for path, want := range map[string]os.FileMode{inst.Binary: 0o500, filepath.Dir(inst.Binary): 0o700 | os.ModeDir, private: 0o700 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode(), err, want)
		}
	}
	if again, _ := c.Install(t.Context(), e, Pin{}); again.Binary != inst.Binary {
		t.Errorf("a content was copied twice: %s, %s", inst.Binary, again.Binary)
	}

	// Replacing the original leaves the copy as it was.
	writeBin(t, dir, "jumpwire-driver-power", "power 6.6.6")
	if data, _ := os.ReadFile(inst.Binary); string(data) != "power 0.1.0\n" {
		t.Errorf("the copy changed with the original: %q", data)
	}

	// What was described is no longer what is on disk: refused.
	c2 := New([]string{dir}, newFake().describe, WithCacheDir(""), WithRuntimeDir(run))
	defer c2.Close()
	_, err = c2.Install(t.Context(), e, Pin{})
	if err == nil || !strings.HasPrefix(err.Error(), bin+" changed since it was described (sha256 "+e.SHA256+", now "+sumOf("power 6.6.6")+")") {
		t.Errorf("stale entry: %v", err)
	}
	_, err = c2.Install(t.Context(), e, Pin{SHA256: e.SHA256})
	if want := "plugin " + bin + " has sha256 " + sumOf("power 6.6.6") + ", the config pins " + e.SHA256; err == nil || err.Error() != want {
		t.Errorf("stale pinned entry: %v\nwant %s", err, want)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(private); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close: %s: %v", private, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestRuntimeDir: copies go only where nobody else can write, and the copies
// of exporters that are gone are removed, those of live ones kept.
func TestRuntimeDir(t *testing.T) {
	dir := t.TempDir()
	writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	install := func(run string) (*Catalog, error) {
		c := New([]string{dir}, newFake().describe, WithCacheDir(""), WithRuntimeDir(run))
		t.Cleanup(func() { c.Close() })
		e, _, err := c.Lookup(t.Context(), "power", Pin{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Install(t.Context(), e, Pin{})
		return c, err
	}

	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := install(open); err == nil || !strings.Contains(err.Error(), "is not private") {
		t.Errorf("a world-writable runtime directory: %v", err)
	}

	run := filepath.Join(t.TempDir(), "run")
	live, err := install(run)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(run, "plugins-1-stale")
	if err := os.MkdirAll(filepath.Join(stale, "abc"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{stale, live.inst.dir} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := install(run); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale copies kept: %v", err)
	}
	if _, err := os.Stat(live.inst.dir); err != nil {
		t.Errorf("a live catalog's copies removed: %v", err)
	}
}
