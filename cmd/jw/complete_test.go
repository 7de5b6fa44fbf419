package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// TestCompletion runs cobra's hidden __complete command, which the scripts of "jw completion
// bash|zsh|fish" call on <TAB>: each line a candidate (with a tab and its description), then
// ":DIRECTIVE".
func TestCompletion(t *testing.T) {
	sock := paramsLab().Start(t)
	tests := []struct {
		args []string // after __complete; the last is the word being completed
		want string
	}{
		{[]string{"dut.power", ""}, "off\tPower off the device\non\tPower on the device\nread\tStream power readings\n:4\n"},
		{[]string{"dut", ""}, "power\tpower: DUT power\n:4\n"},
		{[]string{"du"}, "dut\tcomposite\ndut.power\tpower: DUT power\n:4\n"},
		{[]string{"relay", "o"}, "on\ton(channel integer, state boolean = true, note string = \"-\") Switch a channel\n:4\n"},
		{[]string{"relay", "on", ""}, "channel=\tchannel integer\nstate=\tstate boolean = true\nnote=\tnote string = \"-\"\n:6\n"},
		{[]string{"relay", "on", "4", ""}, "state=\tstate boolean = true\nnote=\tnote string = \"-\"\ntrue\nfalse\n:6\n"},
		{[]string{"relay", "on", "channel=1", "st"}, "state=\tstate boolean = true\n:6\n"},
		{[]string{"relay", "on", "state="}, "state=true\nstate=false\n:4\n"},
		{[]string{"call", "dut.p"}, "dut.power\tpower: DUT power\n:4\n"},
		{[]string{"call", "relay", "on", "note="}, ":4\n"},
		{[]string{"pipe", "serial", ""}, "connect\tRaw byte stream\n:4\n"},
		{[]string{"console", "serial", "--method", ""}, "connect\tRaw byte stream\n:4\n"},
		{[]string{"-o", ""}, "text\njson\n:4\n"},
		{[]string{"console", "serial", "--escape", ""}, "^]\tCtrl-]\n^B\tCtrl-B (the default)\n^A\tCtrl-A\n^_\tCtrl-_\n:4\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := jw(t, sock, append([]string{"__complete"}, tt.args...)...)
			if r.code != 0 || !strings.HasSuffix(r.stdout, tt.want) {
				t.Errorf("code %d, stdout:\n%s\nwant it to end in:\n%s", r.code, r.stdout, tt.want)
			}
		})
	}
}

// Without an exporter, completion offers the commands and nothing else, without an error.
func TestCompletionWithoutExporter(t *testing.T) {
	r := jw(t, filepath.Join(t.TempDir(), "none.sock"), "__complete", "")
	if r.code != 0 || !strings.Contains(r.stdout, "status\t") || !strings.HasSuffix(r.stdout, ":4\n") {
		t.Errorf("code %d, stdout:\n%s", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "power") {
		t.Errorf("completed drivers without an exporter:\n%s", r.stdout)
	}
}

// Driver types complete from the plugin search path, and inspect shows named parameters.
func TestPluginTypes(t *testing.T) {
	pluginEnv(t)
	dir := testbin.PluginDir(t, "power", "serial")
	r := jw(t, "", "__complete", "plugins", "inspect", "--plugin-dir", dir, "")
	want := "power\tMock power switch\njumpstarter_driver_power.driver.MockPower\tMock power switch\n" +
		"serial\tSerial port\njumpstarter_driver_pyserial.driver.PySerial\tSerial port\n:4\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("code %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
	r = jw(t, "", "plugins", "inspect", "--plugin-dir", dir, "serial")
	if !strings.Contains(r.stdout, "  set_dtr  unary        value boolean  null    Set the DTR (data terminal ready) line\n") {
		t.Errorf("inspect serial:\n%s", r.stdout)
	}
}
