package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// head is a valid start of a file: three lines, so the test inputs below
// start at line 4.
const head = "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata: {name: demo}\n"

// TestParseErrors pins the exact text a user sees for each kind of mistake.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // every line of Errors.Error()
	}{
		{
			name: "empty file",
			in:   "",
			want: `f.yaml:1:1: the file is empty; expected an ExporterConfig (apiVersion, kind, metadata, export)`,
		},
		{
			name: "only comments",
			in:   "# todo\n",
			want: `f.yaml:1:1: the file is empty; expected an ExporterConfig (apiVersion, kind, metadata, export)`,
		},
		{
			name: "syntax error",
			in:   head + "export:\n  power: {type: x\n",
			want: `f.yaml:5: invalid YAML: did not find expected ',' or '}'`,
		},
		{
			name: "mapping value in the wrong place",
			in:   head + "export:\n  power:\n    type: x: y\n",
			want: `f.yaml:6: invalid YAML: mapping values are not allowed in this context`,
		},
		{
			name: "tab indentation",
			in:   head + "export:\n\tpower: {}\n",
			want: `f.yaml:5: invalid YAML: found character that cannot start any token (a tab: YAML indents with spaces only)`,
		},
		{
			name: "unknown anchor",
			in:   head + "export:\n  power: *nope\n",
			want: `f.yaml:5:10: invalid YAML: alias *nope refers to no anchor &nope defined before it`,
		},
		{
			name: "control character",
			in:   head + "motd: \"a\x07b\"\n",
			want: `f.yaml:4:9: invalid YAML: control characters are not allowed`,
		},
		{
			name: "not a mapping",
			in:   "- power\n",
			want: `f.yaml:1:1: expected a mapping (apiVersion, kind, metadata, export) at the top of the file, got a sequence`,
		},
		{
			name: "second document",
			in:   head + "---\nexport: {}\n",
			want: `f.yaml:5:1: a second YAML document starts here; the file must hold exactly one`,
		},
		{
			name: "wrong apiVersion",
			in:   "apiVersion: v2\nkind: ExporterConfig\nmetadata: {name: demo}\n",
			want: `f.yaml:1:13: apiVersion: expected "jumpstarter.dev/v1alpha1", got "v2"`,
		},
		{
			name: "kind of the wrong type",
			in:   "apiVersion: jumpstarter.dev/v1alpha1\nkind: [ExporterConfig]\nmetadata: {name: demo}\n",
			want: `f.yaml:2:7: kind: expected "ExporterConfig", got a sequence`,
		},
		{
			name: "missing apiVersion, kind and metadata",
			in:   "export: {}\n",
			want: `f.yaml:1:1: apiVersion: required; expected "jumpstarter.dev/v1alpha1"
f.yaml:1:1: kind: required; expected "ExporterConfig"
f.yaml:1:1: metadata: required; expected a mapping with name (and optionally namespace)`,
		},
		{
			name: "missing name",
			in:   "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata:\n  namespace: lab\n",
			want: `f.yaml:3:1: metadata.name: required; the exporter name (it also seeds the driver uuids)`,
		},
		{
			name: "empty name",
			in:   "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata: {name: ''}\n",
			want: `f.yaml:3:18: metadata.name: must not be empty`,
		},
		{
			name: "unknown top-level key",
			in:   head + "exports: {}\n",
			want: `f.yaml:4:1: exports: unknown key "exports"; expected one of: apiVersion, kind, metadata, endpoint, tls, token, grpcOptions, description, motd, hooks, export, failureDetection, exitOnLeaseEnd, python`,
		},
		{
			name: "unknown metadata key",
			in:   "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata: {name: demo, labels: {}}\n",
			want: `f.yaml:3:24: metadata.labels: unknown key "labels"; expected one of: namespace, name`,
		},
		{
			name: "number where a string is expected",
			in:   head + "token: 0123\n",
			want: `f.yaml:4:8: token: expected a string, got the integer 0123 (quote it to make it a string)`,
		},
		{
			name: "unknown instance key",
			in:   head + "export:\n  power:\n    type: x\n    confg: {}\n",
			want: `f.yaml:7:5: export.power.confg: unknown key "confg"; expected one of: type, plugin, sha256, version, config, description, methods_description, children, ref`,
		},
		{
			name: "unknown key in a child",
			in:   head + "export:\n  dut:\n    children:\n      power: {type: x, tpye: y}\n",
			want: `f.yaml:7:24: export.dut.children.power.tpye: unknown key "tpye"; expected one of: type, plugin, sha256, version, config, description, methods_description, children, ref`,
		},
		{
			name: "config is a sequence",
			in:   head + "export:\n  power:\n    type: x\n    config: [a, b]\n",
			want: `f.yaml:7:13: export.power.config: expected a mapping, got a sequence`,
		},
		{
			name: "type of the wrong kind",
			in:   head + "export:\n  power: {type: true}\n",
			want: `f.yaml:5:17: export.power.type: expected a string, got the boolean true (quote it to make it a string)`,
		},
		{
			name: "empty type",
			in:   head + "export:\n  power: {type: \"\"}\n",
			want: `f.yaml:5:17: export.power.type: must not be empty`,
		},
		{
			name: "instance is a string",
			in:   head + "export:\n  power: jumpstarter_driver_power.driver.MockPower\n",
			want: `f.yaml:5:10: export.power: expected a mapping with type (a driver), children (a composite) or ref (another instance), got "jumpstarter_driver_power.driver.MockPower"`,
		},
		{
			name: "instance with nothing to be",
			in:   head + "export:\n  power: {description: outlet 3}\n",
			want: `f.yaml:5:3: export.power: expected type (a driver), children (a composite) or ref (another instance)`,
		},
		{
			name: "composite with config and plugin",
			in:   head + "export:\n  group:\n    plugin: /bin/x\n    config: {}\n    children: {}\n",
			want: `f.yaml:6:5: export.group.plugin: not allowed without type; an instance without type is a composite, which may only have children and a description
f.yaml:7:5: export.group.config: not allowed without type; an instance without type is a composite, which may only have children and a description`,
		},
		{
			name: "composite with methods_description",
			in:   head + "export:\n  group:\n    methods_description: {on: x}\n    children: {}\n",
			want: `f.yaml:6:5: export.group.methods_description: not allowed without type; an instance without type is a composite, which may only have children and a description`,
		},
		{
			name: "ref with more than a description",
			in:   head + "export:\n  power: {type: x}\n  alias:\n    ref: power\n    type: x\n    children: {}\n",
			want: `f.yaml:8:5: export.alias.type: not allowed together with ref; a ref may only have a description
f.yaml:9:5: export.alias.children: not allowed together with ref; a ref may only have a description`,
		},
		{
			name: "ref to nothing",
			in:   head + "export:\n  dut:\n    children: {power: {type: x}, serial: {type: y}}\n  alias: {ref: dut.pwr}\n",
			want: `f.yaml:7:16: export.alias.ref: no instance "dut.pwr"; expected one of: dut.power, dut.serial`,
		},
		{
			name: "ref below a leaf",
			in:   head + "export:\n  power: {type: x}\n  alias: {ref: power.outlet}\n",
			want: `f.yaml:6:16: export.alias.ref: no instance "power.outlet"; "power" has no children`,
		},
		{
			name: "ref to itself",
			in:   head + "export:\n  alias: {ref: alias}\n",
			want: `f.yaml:5:16: export.alias.ref: "alias" is this instance; a ref must name another instance`,
		},
		{
			name: "ref to a ref",
			in:   head + "export:\n  power: {type: x}\n  a: {ref: power}\n  b: {ref: a}\n",
			want: `f.yaml:7:12: export.b.ref: "a" is itself a ref (to "power"); name "power" instead`,
		},
		{
			name: "ref to an ancestor",
			in:   head + "export:\n  dut:\n    children:\n      up: {ref: dut}\n",
			want: `f.yaml:7:17: export.dut.children.up.ref: "dut" contains this instance; a ref to it would form a cycle`,
		},
		{
			name: "ref path with an empty name",
			in:   head + "export:\n  power: {type: x}\n  alias: {ref: .power}\n",
			want: `f.yaml:6:16: export.alias.ref: invalid path ".power"; expected instance names joined by dots, such as "dut.power"`,
		},
		{
			name: "name with a dot",
			in:   head + "export:\n  dut.power: {type: x}\n",
			want: `f.yaml:5:3: export.dut.power: invalid name "dut.power": a name must not contain dots (dots join names into paths such as "dut.power")`,
		},
		{
			name: "name with a space",
			in:   head + "export:\n  \"my dut\": {type: x}\n",
			want: `f.yaml:5:3: export.my dut: invalid name "my dut": a name must not contain spaces or control characters`,
		},
		{
			name: "empty name",
			in:   head + "export:\n  \"\": {type: x}\n",
			want: `f.yaml:5:3: export."": an instance name must not be empty`,
		},
		{
			name: "null name",
			in:   head + "export:\n  ~: {type: x}\n",
			want: `f.yaml:5:3: export: expected a string key, got null`,
		},
		{
			name: "duplicate instance",
			in:   head + "export:\n  power: {type: x}\n  power: {type: y}\n",
			want: `f.yaml:6:3: export.power: duplicate key "power"; first defined at line 5`,
		},
		{
			name: "duplicate key on one line",
			in:   head + "export:\n  power: {type: x, type: y}\n",
			want: `f.yaml:5:20: export.power.type: duplicate key "type"; first defined at line 5, column 11`,
		},
		{
			name: "duplicate config key",
			in:   head + "export:\n  power:\n    type: x\n    config:\n      host: a\n      host: b\n",
			want: `f.yaml:9:7: export.power.config.host: duplicate key "host"; first defined at line 8`,
		},
		{
			name: "hook without script",
			in:   head + "hooks:\n  beforeLease: {timeout: 10}\n",
			want: `f.yaml:5:3: hooks.beforeLease.script: required; expected the script to run (inline, or the path of a file)`,
		},
		{
			name: "hook onFailure",
			in:   head + "hooks:\n  beforeLease: {script: x, onFailure: stop}\n",
			want: `f.yaml:5:39: hooks.beforeLease.onFailure: "stop" is not one of warn, endLease, exit`,
		},
		{
			name: "hook timeouts",
			in: head + "hooks:\n" +
				"  beforeLease: {script: x, timeout: 0}\n" +
				"  afterLease: {script: x, timeout: \"120\"}\n",
			want: `f.yaml:5:37: hooks.beforeLease.timeout: expected a positive number of seconds, got 0
f.yaml:6:36: hooks.afterLease.timeout: expected a whole number of seconds, got "120"`,
		},
		{
			name: "hook timeout fraction and overflow",
			in: head + "hooks:\n" +
				"  beforeLease: {script: x, timeout: 1.5}\n" +
				"  afterLease: {script: x, timeout: 99999999999}\n",
			want: `f.yaml:5:37: hooks.beforeLease.timeout: expected a whole number of seconds, got the number 1.5
f.yaml:6:36: hooks.afterLease.timeout: 99999999999 seconds is too long; expected at most 9223372036`,
		},
		{
			name: "unknown hook",
			in:   head + "hooks:\n  duringLease: {script: x}\n",
			want: `f.yaml:5:3: hooks.duringLease: unknown key "duringLease"; expected one of: beforeLease, afterLease`,
		},
		{
			name: "hook is a string",
			in:   head + "hooks:\n  beforeLease: j power on\n",
			want: `f.yaml:5:16: hooks.beforeLease: expected a mapping, got "j power on"`,
		},
		{
			name: "jumpstarter keys of the wrong type",
			in: head + "tls: {insecure: \"yes\"}\n" +
				"grpcOptions: {grpc.enable_retries: true}\n" +
				"exitOnLeaseEnd: 1\n" +
				"failureDetection: {maxRapidFailures: -1, rapidFailureWindow: 1m}\n",
			want: `f.yaml:4:17: tls.insecure: expected true or false, got "yes"
f.yaml:5:36: grpcOptions.grpc.enable_retries: expected a string or an integer, got the boolean true
f.yaml:6:17: exitOnLeaseEnd: expected true or false, got the integer 1
f.yaml:7:38: failureDetection.maxRapidFailures: expected a positive integer, got the integer -1
f.yaml:7:62: failureDetection.rapidFailureWindow: expected a whole number of seconds, got "1m"`,
		},
		{
			name: "config values JSON cannot hold",
			in: head + "export:\n  power:\n    type: x\n    config:\n" +
				"      1: one\n" +
				"      limit: .inf\n" +
				"      blob: !!binary aGk=\n" +
				"      list: [1, !vendor 2]\n",
			want: `f.yaml:8:7: export.power.config.1: expected a string key, got the integer 1 (quote it to make it a string)
f.yaml:9:14: export.power.config.limit: .inf is not a finite number; JSON values cannot hold it
f.yaml:10:13: export.power.config.blob: unsupported tag !!binary; expected a string, number, boolean, null, sequence or mapping
f.yaml:11:17: export.power.config.list[1]: unsupported tag !vendor; expected a string, number, boolean, null, sequence or mapping`,
		},
		{
			name: "explicit tags that do not fit",
			in:   head + "export:\n  power:\n    type: x\n    config: {a: !!int ten, b: !!bool maybe, c: !!float x}\n",
			want: `f.yaml:7:17: export.power.config.a: "ten" is not an integer
f.yaml:7:31: export.power.config.b: "maybe" is not a boolean; expected true or false
f.yaml:7:48: export.power.config.c: "x" is not a number`,
		},
		{
			name: "alias inside its own value",
			in:   head + "export:\n  power:\n    type: x\n    config: &c {self: *c}\n",
			want: `f.yaml:7:23: export.power.config.self: alias *c is used inside the value it names; a value cannot contain itself`,
		},
		{
			name: "instance inside itself",
			in:   head + "export:\n  dut: &d\n    children: {again: *d}\n",
			want: `f.yaml:6:23: export.dut.children.again: alias *d is used inside the value it names; a value cannot contain itself`,
		},
		{
			name: "merge of a scalar",
			in:   head + "export:\n  power:\n    type: x\n    config: {<<: 3}\n",
			want: `f.yaml:7:18: export.power.config.<<: expected a mapping or a sequence of mappings to merge, got the integer 3`,
		},
		{
			name: "every problem at once, in file order",
			in: "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nmetadata: {}\n" +
				"export:\n  b: {ref: a}\n  c: {tpye: x}\n",
			want: `f.yaml:3:1: metadata.name: required; the exporter name (it also seeds the driver uuids)
f.yaml:5:12: export.b.ref: no instance "a"; expected one of: b, c
f.yaml:6:3: export.c: expected type (a driver), children (a composite) or ref (another instance)
f.yaml:6:7: export.c.tpye: unknown key "tpye"; expected one of: type, plugin, sha256, version, config, description, methods_description, children, ref`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want errors:\n%s", cfg, tt.want)
			}
			if cfg != nil {
				t.Errorf("Parse returned a Config along with errors")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != strings.Count(tt.want, "\n")+1 {
				t.Errorf("want Errors with one entry per line, got %T %v", err, err)
			}
		})
	}
}

// TestLoadFull checks the values a full example loads to: composites,
// children, refs, hooks, methods_description, anchors and merges.
func TestLoadFull(t *testing.T) {
	path := filepath.Join("testdata", "full.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != path || cfg.Metadata != (Metadata{Namespace: "lab", Name: "bench-1"}) ||
		cfg.Description != "Bench 1, rack B" || cfg.Motd != "Welcome to bench 1.\n" {
		t.Errorf("top level: %+v", cfg)
	}
	wantBefore := &Hook{Script: "j dut power on\n", Exec: "/bin/sh", Timeout: 300 * time.Second, OnFailure: "endLease",
		Pos: Pos{File: path, Line: 14, Column: 3}}
	if !reflect.DeepEqual(cfg.Hooks.BeforeLease, wantBefore) {
		t.Errorf("beforeLease = %+v, want %+v", cfg.Hooks.BeforeLease, wantBefore)
	}
	if h := cfg.Hooks.AfterLease; h == nil || h.Exec != "/usr/bin/python3" || h.Timeout != DefaultHookTimeout || h.OnFailure != OnFailureWarn {
		t.Errorf("afterLease = %+v, want python3, the default timeout and warn", h)
	}

	var paths []string
	_ = cfg.Walk(func(i *Instance) error {
		paths = append(paths, i.Path)
		return nil
	})
	wantPaths := []string{"dut", "dut.power", "dut.serial", "dut.storage", "pdu2", "console", "power"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("Walk order = %v, want %v", paths, wantPaths)
	}

	dut := cfg.Lookup("dut")
	if dut.Type != "" || dut.Config != nil || *dut.Description != "The device under test" || len(dut.Children) != 3 {
		t.Errorf("composite dut = %+v", dut)
	}
	power := cfg.Lookup("dut.power")
	wantPDU := map[string]any{
		"host": "pdu-1.lab", "outlet": int64(3), "delay": 2.5, "verify": true,
		"ports": []any{int64(8080), int64(0x20FB)}, "auth": nil, "since": "2024-01-31",
	}
	if !reflect.DeepEqual(power.Config, wantPDU) {
		t.Errorf("dut.power config = %#v, want %#v", power.Config, wantPDU)
	}
	if want := map[string]string{"on": "Power on the DUT", "off": "Power off the DUT"}; !reflect.DeepEqual(power.MethodsDescription, want) {
		t.Errorf("methods_description = %v", power.MethodsDescription)
	}
	if pdu2 := cfg.Lookup("pdu2"); !reflect.DeepEqual(pdu2.Config, wantPDU) {
		t.Errorf("pdu2 (an alias of dut.power's config) = %#v", pdu2.Config)
	}
	serial := cfg.Lookup("dut.serial")
	wantSerial := map[string]any{"baudrate": int64(9600), "parity": "none", "device": "/dev/ttyUSB0"}
	if !reflect.DeepEqual(serial.Config, wantSerial) || serial.Plugin != "/opt/jumpwire/drivers/jumpwire-driver-serial" {
		t.Errorf("serial (a merge, overridden) = %#v plugin %q", serial.Config, serial.Plugin)
	}
	if huge := cfg.Lookup("dut.storage").Config["huge"]; huge != float64(18446744073709551615) {
		t.Errorf("an integer beyond int64 = %#v, want float64", huge)
	}
	console := cfg.Lookup("console")
	if console.Ref != "dut.serial" || console.Type != "" || *console.Description != "The DUT console" || console.KeyPath != "export.console" {
		t.Errorf("ref console = %+v", console)
	}
	if cfg.Lookup("dut.nope") != nil || cfg.Lookup("") != nil {
		t.Error("Lookup of a missing path found something")
	}
}

func TestDefaultsAndNulls(t *testing.T) {
	_, err := Parse("f.yaml", []byte(head+"description: null\nhooks: {beforeLease: {script: x}, afterLease: null}\n"+
		"export:\n  power: {type: x, config: null, description: null}\n  group: {children: null}\n"))
	if err == nil {
		t.Fatalf("a composite whose children are null has nothing to be; want an error")
	}
	cfg, err := Parse("f.yaml", []byte(head+"description: null\nhooks: {beforeLease: {script: x}, afterLease: null}\n"+
		"export:\n  power: {type: x, config: null, description: null}\n  group: {children: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Hooks.BeforeLease
	if h.Exec != DefaultHookExec || h.Timeout != DefaultHookTimeout || h.OnFailure != OnFailureWarn || cfg.Hooks.AfterLease != nil {
		t.Errorf("hooks = %+v", cfg.Hooks)
	}
	power := cfg.Lookup("power")
	if power.Config == nil || len(power.Config) != 0 || power.Description != nil {
		t.Errorf("a driver with null config gets an empty one and no description: %+v", power)
	}
	if g := cfg.Lookup("group"); g.Config != nil || len(g.Children) != 0 {
		t.Errorf("empty composite = %+v", g)
	}
}

// TestPositions checks ConfigPos, ConfigError and KeyError: how the lead maps
// a driver's or the catalog's complaint back to the file.
func TestPositions(t *testing.T) {
	in := head + `export:
  serial:
    type: serial
    config:
      baud: 9600
      ports:
        - host: a
        - host: b
          port: 2
      a.b: dotted
      <<: {merged: 1}
  bare: {type: x}
`
	cfg, err := Parse("f.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	serial, bare := cfg.Lookup("serial"), cfg.Lookup("bare")
	tests := []struct {
		key  string
		want string
	}{
		{"baud", "f.yaml:8:7"},
		{"ports", "f.yaml:9:7"},
		{"ports.1", "f.yaml:11:11"},
		{"ports[1]", "f.yaml:11:11"},
		{"ports.1.port", "f.yaml:12:11"},
		{"ports[1].port", "f.yaml:12:11"},
		{"ports.1.nope", "f.yaml:11:11"}, // the deepest part that exists
		{"ports.7", "f.yaml:9:7"},
		{"a.b", "f.yaml:13:7"}, // a key with a dot in it
		{"merged", "f.yaml:14:12"},
		{"nope", "f.yaml:7:5"}, // config: itself
		{"", "f.yaml:7:5"},
	}
	for _, tt := range tests {
		if got := serial.ConfigPos(tt.key).String(); got != tt.want {
			t.Errorf("ConfigPos(%q) = %s, want %s", tt.key, got, tt.want)
		}
	}
	if got := bare.ConfigPos("x").String(); got != "f.yaml:15:3" {
		t.Errorf("ConfigPos without config = %s, want the instance f.yaml:15:3", got)
	}
	if got, want := serial.ConfigError("ports[1].port", "expected a string").Error(),
		"f.yaml:12:11: export.serial.config.ports[1].port: expected a string"; got != want {
		t.Errorf("ConfigError = %q, want %q", got, want)
	}
	if got, want := serial.KeyError("type", `no plugin provides type "serial"`).Error(),
		`f.yaml:6:5: export.serial.type: no plugin provides type "serial"`; got != want {
		t.Errorf("KeyError = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open ") {
		t.Errorf("Load of a missing file = %v, want a wrapped fs.ErrNotExist", err)
	}
}

func TestWalkStops(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(head+"export:\n  a: {type: x}\n  b: {type: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	if err := cfg.Walk(func(*Instance) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk = %v after %d calls, want stop after 1", err, n)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Pos: Pos{File: "e.yaml", Line: 12, Column: 5}, Key: "export.power.confg", Msg: "unknown key"}, "e.yaml:12:5: export.power.confg: unknown key"},
		{&Error{Pos: Pos{File: "e.yaml", Line: 3}, Msg: "invalid YAML"}, "e.yaml:3: invalid YAML"},
		{&Error{Pos: Pos{File: "e.yaml"}, Msg: "bad"}, "e.yaml: bad"},
		{&Error{Key: "a\nb", Msg: "two\nlines"}, `a\nb: two\nlines`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	var one *Error
	if err := error(Errors{tests[0].err}); !errors.As(err, &one) || one != tests[0].err {
		t.Error("errors.As does not find the *Error inside Errors")
	}
}

// TestUpstreamCompositeType: upstream's configs name the composite type; such
// an instance is a composite, and what a composite may not have is refused.
func TestUpstreamCompositeType(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(head+"export:\n  dut:\n    type: "+CompositeType+
		"\n    description: the board\n    children:\n      power: {type: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dut := cfg.Lookup("dut")
	if dut.Type != "" || dut.Config != nil || len(dut.Children) != 1 || *dut.Description != "the board" {
		t.Errorf("dut = %+v, want a composite with one child", dut)
	}
	_, err = Parse("f.yaml", []byte(head+"export:\n  dut: {type: "+CompositeType+", config: {a: 1}}\n"))
	want := "f.yaml:5:62: export.dut.config: not allowed for type " + CompositeType +
		", a composite, which may only have children and a description"
	if err == nil || err.Error() != want {
		t.Errorf("composite type with config: %v\nwant %s", err, want)
	}
}
