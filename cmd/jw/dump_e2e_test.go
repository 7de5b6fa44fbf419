package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDump: jw dump copies a storage mux's and a flasher's device into a
// file (switching the mux to the host and back), never replaces an existing
// file without --force, and leaves no file behind when the driver refuses.
func TestDump(t *testing.T) {
	jw := jwBinary(t, "./drivers/storage/cmd/jumpwire-driver-storage")
	dir := t.TempDir()
	img := bytes.Repeat([]byte("jumpwire dump "), 5<<17) // 8.75 MiB
	sum := sha256.Sum256(img)
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, img, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "exporter.yaml")
	yaml := "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata: {name: dump}\nexport:\n" +
		"  mux: {type: storage-mux, config: {path: " + disk + "}}\n" +
		"  flasher: {type: flasher, config: {path: " + disk + ", state: " + filepath.Join(dir, "flasher.state") + "}}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	shell := func(args ...string) (string, error) {
		cmd := exec.Command(jw, "shell", "-c", cfg, "--", "sh", "-c", strings.Join(args, " "))
		cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=", "PATH="+filepath.Dir(jw)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	want := hex.EncodeToString(sum[:])
	for _, path := range []string{"mux", "flasher"} {
		out := filepath.Join(dir, path+".out")
		got, err := shell("jw", "dump", path, out, "&&", "jw", "dump", path, out, ";", "echo", "second: $?", "&&", "jw", "mux", "status")
		if err != nil {
			t.Fatalf("jw dump %s: %v\n%s", path, err, got)
		}
		if !strings.Contains(got, "read "+strconv.Itoa(len(img))+" bytes from "+path+" into "+out) || !strings.Contains(got, "sha256 "+want) {
			t.Errorf("jw dump %s said:\n%s\nwant the bytes and sha256 %s", path, got, want)
		}
		if !strings.Contains(got, out+" exists; give --force to replace it") || !strings.Contains(got, "second: 1") {
			t.Errorf("a second jw dump %s to the same file said:\n%s\nwant a refusal", path, got)
		}
		if !strings.Contains(got, `"mux":"dut"`) {
			t.Errorf("the mux was not switched back to the DUT:\n%s", got)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, img) {
			t.Errorf("%s holds %d bytes, not the device's %d", out, len(b), len(img))
		}
		if got, err := shell("jw", "dump", "--force", path, out); err != nil {
			t.Errorf("jw dump --force %s: %v\n%s", path, err, got)
		}
	}
	// A mux left on the DUT refuses; nothing is written, not even a temporary file.
	out := filepath.Join(dir, "refused.out")
	got, err := shell("jw", "mux", "dut", "&&", "jw", "dump", "--no-switch", "mux", out)
	if err == nil || !strings.Contains(got, "switched to the DUT; call host() before reading") {
		t.Errorf("jw dump --no-switch of a mux on the DUT: %v\n%s\nwant a refusal", err, got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "refused") {
			t.Errorf("a refused dump left %s", e.Name())
		}
	}
}
