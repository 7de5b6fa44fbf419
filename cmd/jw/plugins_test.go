package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
)

// pluginEnv makes the plugin search path hold only what a test passes with
// --plugin-dir, and gives the test its own answer cache.
func pluginEnv(t *testing.T) (cache string) {
	t.Helper()
	cache = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("JUMPWIRE_PLUGIN_PATH", "")
	return filepath.Join(cache, "jumpwire", "plugins")
}

func pluginSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// pluginTableRows splits the output into lines of columns (separated by 2+ spaces).
func pluginTableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var row []string
		for _, f := range strings.Split(strings.TrimSpace(line), "  ") {
			if f = strings.TrimSpace(f); f != "" {
				row = append(row, f)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func TestPluginsList(t *testing.T) {
	pluginEnv(t)
	dir := testbin.PluginDir(t, "power", "network")
	power, network := filepath.Join(dir, "jumpwire-driver-power"), filepath.Join(dir, "jumpwire-driver-network")
	ps, ns := pluginSHA256(t, power), pluginSHA256(t, network)

	r := jw(t, "", "plugins", "list", "--plugin-dir", dir)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	want := [][]string{
		{"TYPE", "BINARY", "VERSION", "SDK", "PROTOCOL", "SHA256", "ALIASES"},
		{"power", power, "0.1.0", sdk.Version, protoVersion, ps[:12], "jumpstarter_driver_power.driver.MockPower"},
		{"tcp", network, "0.1.0", sdk.Version, protoVersion, ns[:12], "jumpstarter_driver_network.driver.TcpNetwork"},
		{"udp", network, "0.1.0", sdk.Version, protoVersion, ns[:12], "jumpstarter_driver_network.driver.UdpNetwork"},
		{"unix", network, "0.1.0", sdk.Version, protoVersion, ns[:12], "jumpstarter_driver_network.driver.UnixNetwork"},
	}
	if got := pluginTableRows(r.stdout); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("jw plugins list:\n%s\nwant rows %q", r.stdout, want)
	}

	r = jw(t, "", "plugins", "list", "--plugin-dir", dir, "-o", "json")
	var doc struct {
		SearchPath []string `json:"search_path"`
		Types      []struct {
			Type, Binary, Version, SHA256, Protocol string
			SDKVersion                              string `json:"sdk_version"`
			Aliases                                 []string
		}
		Duplicates, Failed []any
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(doc.Types) != 4 || doc.SearchPath[0] != dir || doc.Duplicates == nil || len(doc.Duplicates) != 0 || doc.Failed == nil {
		t.Fatalf("json: %+v", doc)
	}
	if p := doc.Types[0]; p.Type != "power" || p.Binary != power || p.SHA256 != ps || p.Protocol != protoVersion ||
		p.SDKVersion != sdk.Version || p.Aliases[0] != "jumpstarter_driver_power.driver.MockPower" {
		t.Errorf("json power: %+v", p)
	}
}

// TestPluginsListProblems: duplicates, binaries that fail to describe, one
// speaking a newer protocol, and an empty search path.
func TestPluginsListProblems(t *testing.T) {
	cache := pluginEnv(t)
	d1 := testbin.PluginDir(t, "power")
	d2 := testbin.PluginDir(t, "power")
	p1, p2 := filepath.Join(d1, "jumpwire-driver-power"), filepath.Join(d2, "jumpwire-driver-power")
	sum := pluginSHA256(t, p1)
	bad := filepath.Join(d2, "jumpwire-driver-chatty")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A binary whose content jw has seen before, speaking protocol 1.7: the
	// cached answer stands in for launching it.
	future := filepath.Join(d2, "jumpwire-driver-future")
	if err := os.WriteFile(future, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	answer := `{"sdkVersion": "0.9.0", "protocolMinor": 7, "version": "2.0.0", "types": [{"name": "future"}]}`
	if err := os.WriteFile(filepath.Join(cache, pluginSHA256(t, future)+".json"), []byte(answer), 0o600); err != nil {
		t.Fatal(err)
	}

	r := jw(t, "", "plugins", "list", "--plugin-dir", d1, "--plugin-dir", d2)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	table, rest, _ := strings.Cut(r.stdout, "\n\n")
	want := [][]string{
		{"TYPE", "BINARY", "VERSION", "SDK", "PROTOCOL", "SHA256", "ALIASES"},
		{"future", future, "2.0.0", "0.9.0", "1.7 (newer)", pluginSHA256(t, future)[:12], "-"},
		{"power", p1, "0.1.0", sdk.Version, protoVersion, sum[:12], "jumpstarter_driver_power.driver.MockPower"},
		{"power (shadowed)", p2, "0.1.0", sdk.Version, protoVersion, sum[:12], "jumpstarter_driver_power.driver.MockPower"},
	}
	if got := pluginTableRows(table); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("table:\n%s\nwant rows %q", table, want)
	}
	wantRest := fmt.Sprintf(`(newer): the binary speaks a newer plugin protocol than this jw (1.%d); it is accepted, and what the newer protocol adds is not used

Duplicates: the first binary is used; pin another with "version:" or "sha256:" in the instance
  jumpstarter_driver_power.driver.MockPower, power:
    %s  0.1.0  sha256 %s
    %s  0.1.0  sha256 %s

Failed: these binaries could not be asked what they provide
  %s did not answer as a jumpwire plugin: it printed "hello" instead of the handshake (is it a driver built with the jumpwire sdk? a plugin must print nothing to stdout itself)
`, protocol.Minor, p1, sum[:12], p2, sum[:12], bad)
	if rest != wantRest {
		t.Errorf("sections:\n%s\nwant:\n%s", rest, wantRest)
	}

	r = jw(t, "", "plugins", "list", "--plugin-dir", d1, "--plugin-dir", d2, "-o", "json")
	var doc struct {
		Duplicates []struct {
			Names    []string
			Binaries []struct{ Binary, SHA256 string }
		}
		Failed []struct{ Binary, Error string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Duplicates) != 1 || doc.Duplicates[0].Binaries[1].Binary != p2 || doc.Duplicates[0].Binaries[0].SHA256 != sum ||
		len(doc.Failed) != 1 || doc.Failed[0].Binary != bad {
		t.Errorf("json: %+v", doc)
	}

	empty := t.TempDir()
	r = jw(t, "", "plugins", "list", "--plugin-dir", empty)
	if !strings.HasPrefix(r.stdout, "no plugin binaries found (searched "+empty+", ") || r.code != 0 {
		t.Errorf("empty search path: %+v", r)
	}
}

func TestPluginsInspect(t *testing.T) {
	pluginEnv(t)
	dir := testbin.PluginDir(t, "power", "network")
	power := filepath.Join(dir, "jumpwire-driver-power")
	jw(t, "", "plugins", "inspect", "--plugin-dir", dir, "jumpstarter_driver_power.driver.MockPower").check(t, `power: Mock power switch
  binary:  `+power+`
  version: 0.1.0 (sdk `+sdk.Version+`, plugin protocol `+protoVersion+`)
  sha256:  `+pluginSHA256(t, power)+`
  client:  jumpstarter_driver_power.client.PowerClient
  aliases: jumpstarter_driver_power.driver.MockPower

Methods:
  NAME   KIND       PARAMS  RESULT   DESCRIPTION
  on     unary      -       null     Power on the device
  off    unary      -       null     Power off the device
  read   streaming  -       object   Stream power readings
  state  unary      -       boolean  Whether the device is powered

Config:
  NAME      TYPE      DESCRIPTION
  on        boolean   initial state: true starts powered
  voltage   number    volts reported while on (default 5)
  current   number    amperes reported while on (default 2)
  readings  integer   readings each read() streams (default 3)
  interval  duration  time between readings, e.g. 100ms (default 100ms)
`, "", 0)

	r := jw(t, "", "plugins", "inspect", "--plugin-dir", dir, "tcp", "-o", "json")
	var doc struct {
		Type, Client, Binary string
		Methods              []struct{ Name, Kind, Result string }
		Config               []struct{ Name, Type string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if doc.Type != "tcp" || doc.Binary != filepath.Join(dir, "jumpwire-driver-network") ||
		len(doc.Methods) == 0 || doc.Methods[0].Name != "connect" || doc.Methods[0].Kind != "byte_stream" ||
		len(doc.Config) == 0 || doc.Config[0].Name != "host" || doc.Config[0].Type != "string" {
		t.Errorf("json: %+v", doc)
	}

	r = jw(t, "", "plugins", "inspect", "--plugin-dir", dir, "powr")
	want := `jw: unknown driver type "powr"; known types: power, tcp, udp, unix (searched ` + dir + ", "
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) || r.stdout != "" {
		t.Errorf("unknown type: %+v\nwant stderr %s...", r, want)
	}
	jw(t, "", "plugins", "inspect").checkUsage(t, `jw: inspect needs a driver TYPE (see "jw plugins list")`,
		"jw plugins inspect TYPE [flags]")
	jw(t, "", "plugins", "list", "-o", "yaml").checkUsage(t, `jw: invalid --output "yaml" (want text or json)`,
		"jw plugins list [flags]")
}

// protoVersion is the plugin protocol version jw shows for a binary of this SDK.
var protoVersion = fmt.Sprintf("%d.%d", protocol.Version, protocol.Minor)
