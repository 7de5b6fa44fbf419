package exporter_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestMain(m *testing.M) { testbin.Main(m) }

const header = `apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: lab, name: bench-1}
`

const demo = header + `motd: hello
export:
  power:
    type: jumpstarter_driver_power.driver.MockPower
    config: {voltage: 5, current: 2, interval: 1ms}
  dut:
    description: the board
    children:
      power:
        type: power
        description: core rail
        config: {on: true}
        methods_description: {on: "Power on the core rail"}
  alias:
    ref: dut.power
`

// writeConfig writes a config file and returns its path.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve starts an exporter with the power plugin on yaml.
func serve(t *testing.T, yaml string) (*exporter.Exporter, jumpstarterv1.ExporterServiceClient) {
	t.Helper()
	rx := start(t, yaml, nil)
	return rx.e, rx.c
}

func TestReport(t *testing.T) {
	_, c := serve(t, demo)
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Labels["jumpstarter.dev/name"] != "bench-1" || r.Motd != "hello" {
		t.Errorf("exporter labels %v motd %q", r.Labels, r.Motd)
	}
	type row struct{ name, parent, client, desc string }
	byUUID := map[string]string{}
	var got []row
	for _, d := range r.Reports {
		name := d.Labels["jumpstarter.dev/name"]
		byUUID[d.Uuid] = name
		got = append(got, row{name, byUUID[d.GetParentUuid()], d.Labels["jumpstarter.dev/client"], d.GetDescription()})
	}
	want := []row{
		{"", "", "jumpstarter_driver_composite.client.CompositeClient", ""},
		{"power", "", "jumpstarter_driver_power.client.PowerClient", "Mock power switch"},
		{"dut", "", "jumpstarter_driver_composite.client.CompositeClient", "the board"},
		{"power", "dut", "jumpstarter_driver_power.client.PowerClient", "core rail"},
		{"alias", "", "jumpstarter_driver_power.client.PowerClient", "core rail"},
	}
	if len(got) != len(want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if r.Reports[0].ParentUuid != nil || r.Reports[0].Uuid != r.Uuid {
		t.Errorf("root report %v should have no parent and the exporter's uuid %s", r.Reports[0], r.Uuid)
	}
	dutPower := r.Reports[3]
	if dutPower.MethodsDescription["on"] != "Power on the core rail" || dutPower.MethodsDescription["off"] != "Power off the device" {
		t.Errorf("methods_description %v: config should override the driver's", dutPower.MethodsDescription)
	}
	if dutPower.Labels["jumpwire.dev/methods"] != `{"off":"unary","on":"unary","read":"streaming","state":"unary"}` {
		t.Errorf("methods label %q", dutPower.Labels["jumpwire.dev/methods"])
	}

	// Uuids derive from the exporter's name and the paths: a second exporter
	// on the same config reports the same ones.
	_, c2 := serve(t, demo)
	r2, err := c2.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Reports {
		if r.Reports[i].Uuid != r2.Reports[i].Uuid {
			t.Errorf("uuid of report %d changed between exporters: %s, %s", i, r.Reports[i].Uuid, r2.Reports[i].Uuid)
		}
	}
}

// uuidOf finds the uuid of the instance at a dotted path.
func uuidOf(t testing.TB, c jumpstarterv1.ExporterServiceClient, path string) string {
	t.Helper()
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{r.Uuid: ""}
	for _, d := range r.Reports[1:] {
		p := d.Labels["jumpstarter.dev/name"]
		if pp := paths[d.GetParentUuid()]; pp != "" {
			p = pp + "." + p
		}
		paths[d.Uuid] = p
		if p == path {
			return d.Uuid
		}
	}
	t.Fatalf("no instance at %q", path)
	return ""
}

func call(t *testing.T, c jumpstarterv1.ExporterServiceClient, uuid, method string, args ...*structpb.Value) (any, error) {
	t.Helper()
	r, err := c.DriverCall(t.Context(), &jumpstarterv1.DriverCallRequest{Uuid: uuid, Method: method, Args: args})
	if err != nil {
		return nil, err
	}
	return r.Result.AsInterface(), nil
}

func TestCalls(t *testing.T) {
	_, c := serve(t, demo)
	power := uuidOf(t, c, "power")
	if v, err := call(t, c, power, "on"); err != nil || v != nil {
		t.Fatalf("on: %v, %v", v, err)
	}
	s, err := c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{Uuid: power, Method: "read"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := s.Recv()
		if err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		if got := m.Result.AsInterface(); got.(map[string]any)["voltage"] != 5.0 || m.Uuid != power {
			t.Errorf("reading %v from %s", got, m.Uuid)
		}
		n++
	}
	if n != 3 {
		t.Errorf("read streamed %d readings, want 3", n)
	}

	// The alias reaches the same instance as dut.power.
	alias, dut := uuidOf(t, c, "alias"), uuidOf(t, c, "dut.power")
	if _, err := call(t, c, alias, "off"); err != nil {
		t.Fatal(err)
	}
	if v, _ := call(t, c, dut, "state"); v != false {
		t.Errorf("dut.power state after alias off = %v, want false", v)
	}

	errs := []struct {
		uuid, method string
		args         []*structpb.Value
		code         codes.Code
		msg          string
	}{
		{"nope", "on", nil, codes.NotFound, `no driver instance with uuid "nope"`},
		{uuidOf(t, c, "dut"), "on", nil, codes.NotFound, "dut is a composite and has no methods"},
		{power, "explode", nil, codes.NotFound, `power has no method "explode"`},
		{power, "on", []*structpb.Value{structpb.NewBoolValue(true)}, codes.InvalidArgument, "on takes 0 arguments, got 1 (call it as on())"},
	}
	for _, tt := range errs {
		_, err := call(t, c, tt.uuid, tt.method, tt.args...)
		if s := status.Convert(err); s.Code() != tt.code || s.Message() != tt.msg {
			t.Errorf("%s: got %v %q, want %v %q", tt.method, s.Code(), s.Message(), tt.code, tt.msg)
		}
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSessions(t *testing.T) {
	e, c := serve(t, demo)
	pids := e.Session().Pids()
	power := uuidOf(t, c, "power")
	pid := pids[power]
	if pid == 0 || pid == os.Getpid() || !alive(pid) {
		t.Fatalf("power should run in its own process, got pid %d", pid)
	}
	// An alias runs nothing of its own: its calls go to its target's
	// process, which its report shows.
	if _, ok := pids[uuidOf(t, c, "alias")]; ok {
		t.Error("the session runs an instance for the alias")
	}
	aliasPid, targetPid := pidLabel(t, c, uuidOf(t, c, "alias")), pidLabel(t, c, uuidOf(t, c, "dut.power"))
	if aliasPid != targetPid || aliasPid != strconv.Itoa(pids[uuidOf(t, c, "dut.power")]) {
		t.Errorf("the alias reports pid %s, its target %s (running %d)", aliasPid, targetPid, pids[uuidOf(t, c, "dut.power")])
	}
	if v, err := call(t, c, uuidOf(t, c, "alias"), "off"); err != nil || v != nil { // it was configured on
		t.Errorf("off() through the alias = %v, %v", v, err)
	}
	if v, err := call(t, c, uuidOf(t, c, "dut.power"), "state"); err != nil || v != false {
		t.Errorf("state() of the alias's target after off() through the alias = %v, %v; want false", v, err)
	}
	if _, err := call(t, c, power, "on"); err != nil {
		t.Fatal(err)
	}
	st, err := c.GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{})
	if err != nil || st.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY {
		t.Fatalf("status %v, %v; want LEASE_READY", st, err)
	}
	r, err := c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{})
	if err != nil || !r.Success {
		t.Fatalf("EndSession: %v, %v", r, err)
	}
	waitGone(t, pid)
	// A fresh session: new processes, the driver's state is the configured one.
	if v, err := call(t, c, power, "state"); err != nil || v != false {
		t.Errorf("state in the next session = %v, %v; want false", v, err)
	}
	if e.Session().Pids()[power] == pid {
		t.Error("the next session reused the old process")
	}
	st2, _ := c.GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{})
	if st2.StatusVersion <= st.StatusVersion || st2.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY {
		t.Errorf("status after EndSession %v (version %d before)", st2, st.StatusVersion)
	}

	last := e.Session().Pids()[power]
	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, last)
	if _, err := call(t, c, power, "on"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("call after Close: %v, want FAILED_PRECONDITION", err)
	}
}

// pidLabel is the plugin process GetReport shows for uuid.
func pidLabel(t *testing.T, c jumpstarterv1.ExporterServiceClient, uuid string) string {
	t.Helper()
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Reports {
		if d.Uuid == uuid {
			return d.Labels[exporter.LabelPid]
		}
	}
	t.Fatalf("GetReport has no instance %s", uuid)
	return ""
}
