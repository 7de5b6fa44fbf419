package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// fakeDescriber answers for fake binaries by their content, "<type> <version>",
// and counts how often each binary was asked.
type fakeDescriber struct {
	mu    sync.Mutex
	calls map[string]int
	minor uint32 // protocol_minor every binary reports
}

func newFake() *fakeDescriber { return &fakeDescriber{calls: map[string]int{}} }

func (f *fakeDescriber) describe(_ context.Context, bin string) (*pluginv1.DescribeResponse, error) {
	f.mu.Lock()
	f.calls[bin]++
	f.mu.Unlock()
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	typ, version, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	if typ == "broken" {
		return nil, fmt.Errorf("%s did not answer as a jumpwire plugin", bin)
	}
	return &pluginv1.DescribeResponse{
		SdkVersion: "0.1.0", ProtocolMinor: f.minor, Version: version,
		Types: []*pluginv1.DriverType{{Name: typ, Aliases: []string{"upstream." + typ}, Client: "client." + typ}},
	}, nil
}

// total is how many binaries were asked, in all.
func (f *fakeDescriber) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// writeBin writes a fake plugin binary whose content is "<type> <version>".
func writeBin(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func sumOf(content string) string {
	s := sha256.Sum256([]byte(content + "\n"))
	return hex.EncodeToString(s[:])
}

func newCatalog(t *testing.T, f *fakeDescriber, cache string, dirs ...string) *Catalog {
	t.Helper()
	c := New(dirs, f.describe, WithCacheDir(cache), WithRuntimeDir(filepath.Join(t.TempDir(), "run")))
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCacheByHash: a content is described once, then remembered in memory
// and in the cache directory as the protojson of its DescribeResponse.
func TestCacheByHash(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	a := writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	writeBin(t, dir, "jumpwire-driver-power-copy", "power 0.1.0") // same content, another name
	writeBin(t, dir, "notes.txt", "not a plugin")

	f := newFake()
	c := newCatalog(t, f, cache, dir)
	entries, failures := c.Entries(t.Context())
	if len(entries) != 2 || len(failures) != 0 {
		t.Fatalf("entries %v, failures %v", entries, failures)
	}
	if f.total() != 1 {
		t.Errorf("two binaries with one content were described %d times, want once", f.total())
	}
	if entries[0].SHA256 != sumOf("power 0.1.0") {
		t.Errorf("sha256 %s, want %s", entries[0].SHA256, sumOf("power 0.1.0"))
	}

	// On disk: <cache>/<sha256>.json, the protojson of the answer.
	data, err := os.ReadFile(filepath.Join(cache, sumOf("power 0.1.0")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var cached pluginv1.DescribeResponse
	if err := protojson.Unmarshal(data, &cached); err != nil {
		t.Fatalf("cache file is not a DescribeResponse: %v\n%s", err, data)
	}
	if !proto.Equal(&cached, entries[0].Info) {
		t.Errorf("cached %v, want %v", &cached, entries[0].Info)
	}

	// A new catalog (a new process) asks no binary it has seen.
	f2 := newFake()
	c2 := newCatalog(t, f2, cache, dir)
	if e, _, err := c2.Lookup(t.Context(), "power", Pin{}); err != nil || e.Info.GetVersion() != "0.1.0" {
		t.Fatalf("lookup from the cache: %v, %v", e, err)
	}
	if f2.total() != 0 {
		t.Errorf("cache hit described %d binaries", f2.total())
	}

	// A binary whose content changes is described again, once.
	before := f.calls[a]
	writeBin(t, dir, "jumpwire-driver-power", "power 0.2.0")
	c.Rescan(t.Context())
	c.Rescan(t.Context())
	if f.calls[a] != before+1 || f.total() != 2 {
		t.Errorf("after a change: calls %v, want the changed binary described once more", f.calls)
	}
	if e, _, _ := c.Lookup(t.Context(), "power", Pin{}); e.Info.GetVersion() != "0.2.0" || e.Binary != a {
		t.Errorf("after rescan: %s %s", e.Binary, e.Info.GetVersion())
	}

	// An unreadable cache file is described again and rewritten.
	bad := filepath.Join(cache, sumOf("power 0.2.0")+".json")
	if err := os.WriteFile(bad, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	f3 := newFake()
	newCatalog(t, f3, cache, dir).Scan(t.Context())
	if f3.calls[a] != 1 {
		t.Errorf("corrupt cache: calls %v", f3.calls)
	}
	if data, _ := os.ReadFile(bad); protojson.Unmarshal(data, &cached) != nil {
		t.Errorf("corrupt cache file not rewritten: %s", data)
	}
}

// TestUnwritableCache: a cache directory that cannot be made is no cache.
func TestUnwritableCache(t *testing.T) {
	dir := t.TempDir()
	writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	file := writeBin(t, t.TempDir(), "file", "x")
	for i := range 2 {
		f := newFake()
		c := newCatalog(t, f, filepath.Join(file, "cache"), dir)
		if _, _, err := c.Lookup(t.Context(), "power", Pin{}); err != nil {
			t.Fatalf("catalog %d: %v", i, err)
		}
		if f.total() != 1 {
			t.Errorf("catalog %d described %d binaries, want 1 (no cache)", i, f.total())
		}
	}
}

// TestHashMemo: a binary is read again only when its size, times or inode
// change.
func TestHashMemo(t *testing.T) {
	dir := t.TempDir()
	bin := writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	c := newCatalog(t, newFake(), "", dir)
	for range 3 {
		if _, err := c.Binary(t.Context(), bin, Pin{}); err != nil {
			t.Fatal(err)
		}
	}
	if c.known.reads != 1 {
		t.Errorf("hashed %d times, want 1", c.known.reads)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(bin, later, later); err != nil {
		t.Fatal(err)
	}
	e, err := c.Binary(t.Context(), bin, Pin{})
	if err != nil || c.known.reads != 2 || e.SHA256 != sumOf("power 0.1.0") {
		t.Errorf("after touch: reads %d, entry %v, %v", c.known.reads, e, err)
	}
	// Replaced by another file (another inode) of the same size and times.
	tmp := writeBin(t, dir, "new", "power 0.9.0")
	if err := os.Chtimes(tmp, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.Binary(t.Context(), bin, Pin{}); e.SHA256 != sumOf("power 0.9.0") {
		t.Errorf("a replaced file kept its old hash")
	}
}

func TestNewer(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.10.0", "1.9.0", 1},
		{"v1.2.0", "1.2.0", 0},
		{"1.2", "1.2.0", 0},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"0.1.0", "dev", 1},
		{"", "0.0.1", -1},
		{"dev", "", 0},
	} {
		if got := Newer(tt.a, tt.b); got != tt.want {
			t.Errorf("Newer(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestDuplicates: several binaries provide one type: all are recorded, the
// newest version wins, equal versions go by search order.
func TestDuplicates(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	old := writeBin(t, d1, "jumpwire-driver-power", "power 0.1.0")
	dev := writeBin(t, d1, "jumpwire-driver-power-dev", "power dev")
	newest := writeBin(t, d2, "jumpwire-driver-power", "power 0.10.0")
	writeBin(t, d2, "jumpwire-driver-serial", "serial 1.0.0")
	s1 := writeBin(t, d1, "jumpwire-driver-tcp", "tcp 1.0.0")
	writeBin(t, d2, "jumpwire-driver-tcp", "tcp v1.0.0")
	c := newCatalog(t, newFake(), "", d1, d2)

	for _, name := range []string{"power", "upstream.power"} {
		e, dt, err := c.Lookup(t.Context(), name, Pin{})
		if err != nil || e.Binary != newest || dt.Name != "power" {
			t.Errorf("Lookup(%s) = %v, %v; want %s", name, e, err, newest)
		}
	}
	if e, _, _ := c.Lookup(t.Context(), "tcp", Pin{}); e.Binary != s1 {
		t.Errorf("equal versions: got %s, want the first on the search path %s", e.Binary, s1)
	}

	dups := c.Duplicates(t.Context())
	if len(dups) != 2 {
		t.Fatalf("duplicates %v", dups)
	}
	var got []string
	for _, e := range dups[0].Entries {
		got = append(got, e.Binary)
	}
	if strings.Join(dups[0].Names, ",") != "power,upstream.power" || strings.Join(got, ",") != newest+","+old+","+dev {
		t.Errorf("duplicates[0] = %v %v", dups[0].Names, got)
	}
	if strings.Join(dups[1].Names, ",") != "tcp,upstream.tcp" || dups[1].Entries[0].Binary != s1 {
		t.Errorf("duplicates[1] = %v", dups[1])
	}
}

// TestPins: pins choose among duplicates, and a pin nothing matches names
// what each candidate has.
func TestPins(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	old := writeBin(t, d1, "jumpwire-driver-power", "power 0.1.0")
	newest := writeBin(t, d2, "jumpwire-driver-power", "power 0.2.0")
	writeBin(t, d2, "jumpwire-driver-serial", "serial 1.0.0")
	sumOld, sumNew := sumOf("power 0.1.0"), sumOf("power 0.2.0")
	nothing := strings.Repeat("ab", 32)
	c := newCatalog(t, newFake(), "", d1, d2)

	for _, tt := range []struct {
		name string
		pin  Pin
		want string // the binary, or the error
	}{
		{"no pin", Pin{}, newest},
		{"sha256 of the older", Pin{SHA256: sumOld}, old},
		{"version of the older", Pin{Version: "v0.1.0"}, old},
		{"both", Pin{SHA256: sumNew, Version: "0.2.0"}, newest},
		{"sha256 nothing has", Pin{SHA256: nothing},
			`no plugin providing "power" has sha256 ` + nothing + ", which the config pins: " +
				newest + " has sha256 " + sumNew + "; " + old + " has sha256 " + sumOld},
		{"version nothing has", Pin{Version: "0.3.0"},
			`no plugin providing "power" has version 0.3.0, which the config pins: ` +
				newest + " has version 0.2.0; " + old + " has version 0.1.0"},
		{"sha256 of one, version of the other", Pin{SHA256: sumNew, Version: "0.1.0"},
			"plugin " + newest + " has version 0.2.0, the config pins 0.1.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, _, err := c.Lookup(t.Context(), "power", tt.pin)
			switch {
			case err != nil && err.Error() != tt.want:
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			case err != nil && !errors.Is(err, ErrPinMismatch):
				t.Errorf("%v is not ErrPinMismatch", err)
			case err == nil && e.Binary != tt.want:
				t.Errorf("got %s, want %s", e.Binary, tt.want)
			}
		})
	}
}

// TestBinaryPins: an explicit binary whose content does not have the pinned
// sha256 is refused without running it.
func TestBinaryPins(t *testing.T) {
	dir := t.TempDir()
	bin := writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	want := strings.Repeat("12", 32)
	f := newFake()
	c := newCatalog(t, f, "", dir)
	_, err := c.Binary(t.Context(), bin, Pin{SHA256: want})
	msg := "plugin " + bin + " has sha256 " + sumOf("power 0.1.0") + ", the config pins " + want
	var pe *PinError
	if !errors.As(err, &pe) || pe.Key != PinSHA256 || err.Error() != msg {
		t.Errorf("got %v\nwant %s", err, msg)
	}
	if f.total() != 0 {
		t.Errorf("a binary failing its sha256 pin was run %d times", f.total())
	}
	_, err = c.Binary(t.Context(), bin, Pin{SHA256: sumOf("power 0.1.0"), Version: "1.0"})
	if msg := "plugin " + bin + " has version 0.1.0, the config pins 1.0"; err == nil || err.Error() != msg {
		t.Errorf("got %v\nwant %s", err, msg)
	}
	if e, err := c.Binary(t.Context(), bin, Pin{SHA256: sumOf("power 0.1.0"), Version: "0.1.0"}); err != nil || e.Type("power") == nil || e.Binary != bin {
		t.Errorf("matching pins: %v, %v", e, err)
	}
	// Pinned by hash, the binary was asked from its verified copy only.
	for path := range f.calls {
		if path == bin || !strings.HasPrefix(path, c.inst.dir+"/") {
			t.Errorf("a binary pinned by hash was run from %s", path)
		}
	}
	if f.total() != 1 {
		t.Errorf("described %d times, want 1", f.total())
	}
}

// TestNewerProtocol: a binary speaking a newer minor protocol is accepted.
func TestNewerProtocol(t *testing.T) {
	dir := t.TempDir()
	writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	f := newFake()
	f.minor = protocol.Minor + 3
	e, _, err := newCatalog(t, f, "", dir).Lookup(t.Context(), "power", Pin{})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d.%d", protocol.Version, protocol.Minor+3); e.Protocol() != want || !e.NewerProtocol() {
		t.Errorf("protocol %s (newer %v), want %s (newer)", e.Protocol(), e.NewerProtocol(), want)
	}
}

// TestFailures: binaries that cannot be described are listed and named in
// the error for an unknown type.
func TestFailures(t *testing.T) {
	dir := t.TempDir()
	writeBin(t, dir, "jumpwire-driver-power", "power 0.1.0")
	broken := writeBin(t, dir, "jumpwire-driver-broken", "broken")
	text := filepath.Join(dir, "jumpwire-driver-text")
	if err := os.WriteFile(text, []byte("text"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCatalog(t, newFake(), "", dir)
	_, failures := c.Entries(t.Context())
	if len(failures) != 2 || failures[0].Binary != broken || failures[1].Binary != text {
		t.Fatalf("failures %v", failures)
	}
	_, _, err := c.Lookup(t.Context(), "serial", Pin{})
	want := `unknown driver type "serial"; known types: power (searched ` + dir +
		"; add directories with --plugin-dir or JUMPWIRE_PLUGIN_PATH); skipped " + broken +
		" did not answer as a jumpwire plugin; skipped " + text + " is not executable (check its mode: chmod +x)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnknownType) {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestUnreadablePluginDir: a search-path directory that cannot be read is
// reported (in the failures, and in an unknown type's message), not
// skipped without a word; one that does not exist is not an error.
func TestUnreadablePluginDir(t *testing.T) {
	f := newFake()
	notDir := writeBin(t, t.TempDir(), "plugins", "a file where a directory was meant")
	missing := filepath.Join(t.TempDir(), "missing")
	c := newCatalog(t, f, "", notDir, missing)
	_, failures := c.Entries(t.Context())
	if len(failures) != 1 || failures[0].Binary != notDir ||
		!strings.Contains(failures[0].Error(), "plugin directory "+notDir+" cannot be read: not a directory") {
		t.Fatalf("failures %v; want one saying %s cannot be read", failures, notDir)
	}
	_, _, err := c.Lookup(t.Context(), "power", Pin{})
	if err == nil || !strings.Contains(err.Error(), "skipped plugin directory "+notDir+" cannot be read") {
		t.Errorf("unknown type: %v; want it to name the unreadable directory", err)
	}
}
