package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// TestUpstreamShellClient: upstream's ShellClient lists jumpwire's shell
// methods, runs them with arguments and environment variables, prints their
// output as it streams, and returns their return codes.
func TestUpstreamShellClient(t *testing.T) {
	root := testbin.Root(t)
	venv := needVenv(t, "python")
	dir := layout(t, map[string]string{"plugins/jumpwire-driver-shell": "./drivers/shell/cmd/jumpwire-driver-shell"})
	cfg := filepath.Join(dir, "exporter.yaml")
	conf := `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: default, name: shell}
export:
  host:
    type: jumpstarter_driver_shell.driver.Shell
    config:
      shell: [sh, -c]
      methods:
        greet: {command: 'echo "hello $1 from $WHO"; echo note >&2', description: Say hello}
        fail: "exit 3"
`
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, "jw"), "shell", "-c", cfg, "--",
		filepath.Join(venv, "bin", "python"), filepath.Join(root, "compat", "upstream_shell.py"))
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=", "PYTHONDONTWRITEBYTECODE=1",
		"XDG_CONFIG_HOME="+filepath.Join(dir, "home"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("upstream's ShellClient: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	want := "methods=fail,greet\nhello world from upstream\ngreet=0\nfail=3\n"
	if stdout.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "note\n") {
		t.Errorf("stderr %q; want the command's stderr", stderr.String())
	}
}
