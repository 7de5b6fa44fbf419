package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesWhatIsNotAFile: a FIFO, a device, a directory and a file
// over MaxFileSize are refused at once with what they are, without waiting
// on a FIFO's writer or reading a device without end.
func TestLoadRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(head+"# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        "is a FIFO (named pipe), not a regular file",
		"/dev/zero": "/dev/zero is a device, not a regular file",
		dir:         "is a directory, not a regular file",
		big:         "a config file may be at most 4194304 (4 MiB)",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(path)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("Load(%s) = %v, want an error saying %q", path, err, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("Load(%s) still blocked after 20s", path)
		}
	}
	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte(head+"export: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ok); err != nil {
		t.Errorf("a plain file: %v", err)
	}
}
