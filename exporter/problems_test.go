package exporter_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// TestConfigProblems checks the exact lines an operator sees for a config
// whose instances the catalog or the drivers reject: every problem at once,
// each at its file:line.
func TestConfigProblems(t *testing.T) {
	dir := testbin.PluginDir(t, "power")
	notExec := filepath.Join(t.TempDir(), "jumpwire-driver-text")
	if err := os.WriteFile(notExec, []byte("just text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := header + `export:
  power:
    type: powr
  p2:
    type: power
    config: {voltage: 5, volts: 2}
  p3:
    type: power
    plugin: /nonexistent/jumpwire-driver-x
  p4:
    type: power
    config: {on: "yes"}
  p5:
    type: power
    plugin: ` + notExec + `
  p6:
    type: power
    config: {voltage: -3}
  p7:
    type: power
    methods_description: {reboot: "Reboot it"}
  p8:
    type: power
    config:
      interval: soon
`
	file := writeConfig(t, yaml)
	_, err := exporter.New(t.Context(), exporter.Options{ConfigFile: file, PluginDirs: []string{dir}})
	if err == nil {
		t.Fatal("exporter.New accepted a bad config")
	}
	want := []string{
		`FILE:6:5: export.power.type: unknown driver type "powr"; known types: power (searched ` + dir + `, `,
		`FILE:9:26: export.p2.config.volts: unknown key; valid keys: current, interval, on, readings, voltage`,
		`FILE:12:5: export.p3.plugin: /nonexistent/jumpwire-driver-x: no such file`,
		`FILE:15:14: export.p4.config.on: expected boolean, got string "yes"`,
		`FILE:18:5: export.p5.plugin: ` + notExec + ` is not executable (check its mode: chmod +x)`,
		`FILE:21:14: export.p6.config.voltage: must not be negative, got -3`,
		`FILE:24:5: export.p7.methods_description: power has no method "reboot"; its methods: [on off read state]`,
		`FILE:28:7: export.p8.config.interval: expected duration, got string "soon" (use a number of seconds, or a string like "1m30s")`,
	}
	got := strings.Split(strings.ReplaceAll(err.Error(), file, "FILE"), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i+1, got[i], want[i])
		}
	}
}

func TestNoPluginsFound(t *testing.T) {
	file := writeConfig(t, header+"export:\n  power:\n    type: power\n")
	t.Setenv("JUMPWIRE_PLUGIN_PATH", "")
	empty := t.TempDir()
	_, err := exporter.New(t.Context(), exporter.Options{ConfigFile: file, PluginDirs: []string{empty}})
	want := file + `:6:5: export.power.type: unknown driver type "power"; no plugin binaries found (searched ` + empty
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant %s...", err, want)
	}
}
