package exporter_test

import (
	"fmt"
	"strings"
	"testing"

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
