package exporter_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// A Python driver whose config gives it children, each its own process:
// a Go power driver, a Python Kinds, a Python echo network, and, for the
// second bench, a Python power and a ref to the first bench's Kinds.
const benches = header + `export:
  bench:
    type: testdrivers.Bench
    children:
      power:
        type: power
      kinds:
        type: testdrivers.Kinds
        config: {greeting: hi}
      echo:
        type: jumpstarter_driver_network.driver.EchoNetwork
  pybench:
    type: testdrivers.Bench
    children:
      power:
        type: jumpstarter_driver_power.driver.MockPower
        plugin: python
      kinds:
        ref: bench.kinds
`

func TestPythonDriverCallsItsChildren(t *testing.T) {
	rx := startPython(t, benches)
	c := rx.c
	rs := reports(t, c)
	bench, pybench := rs["bench"].Uuid, rs["pybench"].Uuid
	pids := rx.e.Session().Pids()
	if pids[bench] == pids[rs["bench.kinds"].Uuid] || pids[bench] == pids[rs["bench.power"].Uuid] {
		t.Fatalf("children share their parent's process: %v", pids)
	}
	if _, ok := rs["bench.power"]; !ok {
		t.Fatal("the configured child is missing from the tree")
	}
	str := structpb.NewStringValue
	num := structpb.NewNumberValue
	for _, tc := range []struct {
		uuid, method string
		args         []*structpb.Value
		want         string
	}{
		{bench, "sync_cycle", nil, "[true false]"},  // Go child, blocking calls from a worker thread
		{bench, "async_cycle", nil, "[true false]"}, // Go child, awaited from the event loop
		{bench, "readings", nil, "3"},               // a Go streaming method, async for
		{bench, "sync_readings", nil, "3"},          // the same, iterated from a worker thread
		{bench, "sync_greet", []*structpb.Value{str("ann")}, "hi ann"},
		{bench, "async_add", []*structpb.Value{num(2), num(3)}, "5"},
		{bench, "count", []*structpb.Value{num(3)}, "[0 1 2]"},
		{bench, "greeting_of_kinds", nil, "hi"},
		{bench, "echo", []*structpb.Value{str("ping")}, "ping"}, // a byte stream to a Python child
		{pybench, "readings", nil, "2"},                         // upstream's MockPower in its own process
		{pybench, "sync_readings", nil, "2"},
		{pybench, "async_add", []*structpb.Value{num(1), num(1)}, "2"}, // through a ref
	} {
		v, err := call(t, c, tc.uuid, tc.method, tc.args...)
		if err != nil || fmt.Sprint(v) != tc.want {
			t.Errorf("%s(%v) = %v, %v; want %s", tc.method, tc.args, v, err, tc.want)
		}
	}
	// What the Go child did is its state, which clients see too.
	if v, err := call(t, c, rs["bench.power"].Uuid, "state"); err != nil || v != false {
		t.Errorf("bench.power state = %v, %v", v, err)
	}

	// A child's error keeps its kind through the parent's call.
	_, err := call(t, c, bench, "kinds_raises")
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasSuffix(st.Message(), "bad value") {
		t.Errorf("kinds_raises: %v", err)
	}

	// A child that crashes fails the parent's call that used it, and only that.
	_, err = call(t, c, bench, "kinds_crashes")
	want := "child kinds of bench: driver bench.kinds (testdrivers.Kinds) exited with status 7"
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != want {
		t.Errorf("kinds_crashes: %v, want UNAVAILABLE %q", err, want)
	}
	if v, err := call(t, c, bench, "sync_greet", str("bob")); err != nil || v != "hi bob" {
		t.Errorf("after the child's crash: %v, %v", v, err)
	}
	if after := rx.e.Session().Pids()[bench]; after != pids[bench] {
		t.Errorf("the parent was restarted (pid %d -> %d)", pids[bench], after)
	}
}

// Upstream drivers that need their configured children, from PyPI at the
// versions python/requirements-pyhost.txt pins: a U-Boot console refuses to
// start without a power and a serial child; a Pi Pico flasher enters BOOTSEL
// by driving its bootsel and run lines (here Go power switches) itself.
const upstreamParents = header + `export:
  uboot:
    type: jumpstarter_driver_uboot.driver.UbootConsole
    config: {prompt: "=> "}
    children:
      power:
        type: power
      serial:
        type: jumpstarter_driver_pyserial.driver.PySerial
        config: {url: "loop://", check_present: false}
  pico:
    type: jumpstarter_driver_pi_pico.driver.PiPicoFlasher
    config: {bootloader_wait_seconds: 0.2, gpio_reset_hold_seconds: 0.01}
    children:
      bootsel:
        type: power
        config: {on: true}
      run:
        type: power
        config: {on: true}
`

func TestUpstreamDriversUseTheirChildren(t *testing.T) {
	rx := startPython(t, upstreamParents)
	c := rx.c
	rs := reports(t, c)
	for _, p := range []string{"uboot.power", "uboot.serial", "pico.bootsel", "pico.run"} {
		if _, ok := rs[p]; !ok {
			t.Errorf("no %s in the tree", p)
		}
	}
	if v, err := call(t, c, rs["uboot"].Uuid, "get_prompt"); err != nil || v != "=> " {
		t.Errorf("uboot get_prompt = %v, %v", v, err)
	}
	// No BOOTSEL volume shows up on this machine: the flasher says so, after
	// it pulsed its lines (both started on; its sequence leaves them off).
	_, err := call(t, c, rs["pico"].Uuid, "enter_bootloader")
	if st := status.Convert(err); !strings.Contains(st.Message(), "No Pico BOOTSEL volume found after bootloader request") {
		t.Errorf("enter_bootloader: %v", err)
	}
	for _, p := range []string{"pico.bootsel", "pico.run"} {
		if v, err := call(t, c, rs[p].Uuid, "state"); err != nil || v != false {
			t.Errorf("%s state = %v, %v: the flasher did not drive it", p, v, err)
		}
	}

	// Without its children the console refuses to start, as upstream's does.
	yaml := header + "export:\n  uboot:\n    type: jumpstarter_driver_uboot.driver.UbootConsole\n"
	_, err = exporter.New(t.Context(), exporter.Options{ConfigFile: writeConfig(t, yaml),
		PluginDirs: []string{testbin.PluginDir(t, "power")}, Python: testbin.Python(t), StartTimeout: 60 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "UbootConsole: power driver not configured as a child") {
		t.Errorf("uboot without children: %v", err)
	}
}

// A reload that changes a child's config replaces the child and its parent,
// whose driver was told of its children's config at its start; the other
// child keeps running.
func TestReloadReplacesTheParentOfAChangedChild(t *testing.T) {
	conf := func(greeting string) string {
		return header + `export:
  bench:
    type: testdrivers.Bench
    children:
      power:
        type: power
      kinds:
        type: testdrivers.Kinds
        config: {greeting: ` + greeting + `}
`
	}
	rx := startPython(t, conf("hi"))
	rs := reports(t, rx.c)
	power := rx.e.Session().Pids()[rs["bench.power"].Uuid]
	if err := os.WriteFile(rx.file, []byte(conf("yo")), 0o600); err != nil {
		t.Fatal(err)
	}
	changes, err := rx.e.Reload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changes {
		if c.Err != nil {
			t.Errorf("%s: %v", c.Path, c.Err)
		}
		got[c.Path] = c.Action + ": " + c.Detail
	}
	want := map[string]string{"bench": "replaced: children changed", "bench.kinds": "replaced: config changed"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if v, err := call(t, rx.c, rs["bench"].Uuid, "greeting_of_kinds"); err != nil || v != "yo" {
		t.Errorf("the parent sees its child's config as %v, %v", v, err)
	}
	if v, err := call(t, rx.c, rs["bench"].Uuid, "sync_greet", structpb.NewStringValue("al")); err != nil || v != "yo al" {
		t.Errorf("the new parent calls the new child: %v, %v", v, err)
	}
	if after := rx.e.Session().Pids()[rs["bench.power"].Uuid]; after != power {
		t.Errorf("the unchanged child was restarted (pid %d -> %d)", power, after)
	}
}
