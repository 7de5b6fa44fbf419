package compat

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"github.com/klauspost/compress/zstd"
)

// TestUpstreamFlasherIntoStorage: upstream's FlasherClient.flash and
// StorageMuxFlasherClient.flash of a gzip image into jumpwire's storage
// drivers write exactly the decompressed bytes, whether the client declares
// the compression (the exporter decodes) or not (the driver does). Only
// against jumpwire: upstream's mock flashers keep their bytes in a temporary
// directory of their own.
func TestUpstreamFlasherIntoStorage(t *testing.T) {
	root := testbin.Root(t)
	venv := needVenv(t, "python")
	dir := layout(t, map[string]string{"plugins/jumpwire-driver-storage": "./drivers/storage/cmd/jumpwire-driver-storage"})
	img := make([]byte, 6<<20)
	_, _ = rand.Read(img[:2<<20]) // the rest compresses
	want := sha256.Sum256(img)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(img)
	_ = zw.Close()
	gzPath := filepath.Join(dir, "image.img.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	flasher, disk := filepath.Join(dir, "flasher.img"), filepath.Join(dir, "disk.img")
	cfg := filepath.Join(dir, "exporter.yaml")
	conf := `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: default, name: flash}
export:
  flasher:
    type: jumpstarter_driver_opendal.driver.MockFlasher
    config: {path: ` + flasher + `}
  disk:
    type: jumpstarter_driver_opendal.driver.MockStorageMuxFlasher
    config: {path: ` + disk + `}
`
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, how := range [][]string{nil, {"gzip"}} {
		name := "undeclared"
		if how != nil {
			name = "declared gzip"
		}
		t.Run(name, func(t *testing.T) {
			for _, f := range []string{flasher, disk} {
				os.Remove(f)
			}
			argv := append([]string{filepath.Join(dir, "jw"), "shell", "-c", cfg, "--",
				filepath.Join(venv, "bin", "python"), filepath.Join(root, "compat", "upstream_flash.py"), gzPath}, how...)
			cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=", "PYTHONDONTWRITEBYTECODE=1",
				"XDG_CONFIG_HOME="+filepath.Join(dir, "home"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("upstream's clients: %v\n%s", err, out)
			}
			for _, f := range []string{flasher, disk} {
				got, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if sha256.Sum256(got) != want {
					t.Errorf("%s holds %d bytes that are not the decompressed image (%d bytes)", filepath.Base(f), len(got), len(img))
				}
			}
		})
	}
}

// TestUpstreamDumpFromStorage: upstream's FlasherClient.dump,
// StorageMuxClient.read_local_file and StorageMuxFlasherClient.dump read
// back exactly what was flashed, from jumpwire's storage drivers and from
// upstream's own Python mock drivers under jumpwire's Python host; a dump
// the client asks compressed arrives compressed.
func TestUpstreamDumpFromStorage(t *testing.T) {
	root := testbin.Root(t)
	venv := needVenv(t, "python")
	dir := layout(t, map[string]string{"plugins/jumpwire-driver-storage": "./drivers/storage/cmd/jumpwire-driver-storage"})
	img := make([]byte, 5<<20+77)
	_, _ = rand.Read(img[:3<<20]) // the rest compresses
	want := sha256.Sum256(img)
	imgPath := filepath.Join(dir, "image.img")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "exporter.yaml")
	conf := `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: default, name: dump}
python: ` + venv + `
export:
  flasher:
    type: jumpstarter_driver_opendal.driver.MockFlasher
    config: {path: ` + filepath.Join(dir, "flasher.dev") + `}
  mux:
    type: jumpstarter_driver_opendal.driver.MockStorageMux
    config: {path: ` + filepath.Join(dir, "mux.dev") + `}
  disk:
    type: jumpstarter_driver_opendal.driver.MockStorageMuxFlasher
    config: {path: ` + filepath.Join(dir, "disk.dev") + `}
  pyflasher:
    type: jumpstarter_driver_opendal.driver.MockFlasher
    plugin: python
  pymux:
    type: jumpstarter_driver_opendal.driver.MockStorageMux
    plugin: python
`
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, "jw"), "shell", "-c", cfg, "--",
		filepath.Join(venv, "bin", "python"), filepath.Join(root, "compat", "upstream_dump.py"), imgPath, out)
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=", "PYTHONDONTWRITEBYTECODE=1",
		"XDG_CONFIG_HOME="+filepath.Join(dir, "home"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upstream's clients: %v\n%s", err, b)
	}
	for _, name := range []string{"flasher.img", "flasher.img.gz", "flasher.img.zst", "mux.img", "disk.img", "pyflasher.img", "pymux.img"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Error(err)
			continue
		}
		raw := got
		switch filepath.Ext(name) {
		case ".gz":
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err == nil {
				raw, err = io.ReadAll(zr)
			}
			if err != nil {
				t.Errorf("%s is not gzip: %v", name, err)
				continue
			}
		case ".zst":
			zr, err := zstd.NewReader(bytes.NewReader(got))
			if err == nil {
				raw, err = io.ReadAll(zr)
			}
			if err != nil {
				t.Errorf("%s is not zstd: %v", name, err)
				continue
			}
		}
		if sha256.Sum256(raw) != want {
			t.Errorf("%s holds %d bytes that are not the flashed image (%d bytes)", name, len(raw), len(img))
		}
	}
}
