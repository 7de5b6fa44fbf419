package exporter_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// An exporter file written for upstream Jumpstarter, plus a Go driver, a
// Python class named over the Go binary that provides its type, and a
// driver that creates children of its own.
const mixed = header + `export:
  gopower:
    type: jumpstarter_driver_power.driver.MockPower
  pypower:
    type: jumpstarter_driver_power.driver.MockPower
    plugin: python
    version: 0.9.0
  shell:
    type: jumpstarter_driver_shell.driver.Shell
    config:
      methods:
        hello: "echo hello $1"
        hang: "echo started; sleep 600"
  storage:
    type: jumpstarter_driver_opendal.driver.MockStorageMux
  group:
    type: jumpstarter_driver_composite.driver.Composite
    children:
      echo:
        type: jumpstarter_driver_network.driver.EchoNetwork
      serial:
        type: jumpstarter_driver_pyserial.driver.PySerial
        plugin: python
        config: {url: "loop://", check_present: false}
  board:
    type: testdrivers.Board
`

// startPython starts an exporter with the project's Python environment and
// the Python test drivers on PYTHONPATH.
func startPython(t *testing.T, yaml string) *running {
	t.Helper()
	py := testbin.Python(t)
	t.Setenv("PYTHONPATH", filepath.Join(testbin.Root(t), "python", "tests"))
	return start(t, yaml, []string{"power"}, func(o *exporter.Options) { o.Python = py })
}

// reports maps each instance's dotted path to its report.
func reports(t *testing.T, c jumpstarterv1.ExporterServiceClient) map[string]*jumpstarterv1.DriverInstanceReport {
	t.Helper()
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{r.Uuid: ""}
	out := map[string]*jumpstarterv1.DriverInstanceReport{}
	for _, d := range r.Reports[1:] {
		p := d.Labels["jumpstarter.dev/name"]
		if pp := paths[d.GetParentUuid()]; pp != "" {
			p = pp + "." + p
		}
		paths[d.Uuid] = p
		out[p] = d
	}
	return out
}

func TestPythonDrivers(t *testing.T) {
	rx := startPython(t, mixed)
	c := rx.c
	rs := reports(t, c)
	for path, want := range map[string]string{
		"gopower":           "power", // a Go binary provides the type: it wins
		"pypower":           "jumpstarter_driver_power.driver.MockPower",
		"shell":             "jumpstarter_driver_shell.driver.Shell",
		"storage":           "jumpstarter_driver_opendal.driver.MockStorageMux",
		"group":             "composite", // upstream's Composite is a composite node of the tree
		"group.echo":        "jumpstarter_driver_network.driver.EchoNetwork",
		"group.serial":      "jumpstarter_driver_pyserial.driver.PySerial",
		"board.power":       "testdrivers.Board:power",
		"board.console":     "testdrivers.Board:console",
		"board.power.meter": "testdrivers.Board:power.meter",
	} {
		r, ok := rs[path]
		if !ok {
			t.Errorf("no %s in the tree", path)
			continue
		}
		if got := r.Labels["jumpwire.dev/type"]; got != want {
			t.Errorf("%s: type %q, want %q", path, got, want)
		}
	}
	if got := rs["pypower"].Labels["jumpstarter.dev/client"]; got != "jumpstarter_driver_power.client.PowerClient" {
		t.Errorf("pypower client %q", got)
	}
	if _, ok := rs["board"].Labels["jumpwire.dev/children"]; ok {
		t.Error("the children label leaked into the report")
	}
	if rs["board.power"].Labels["jumpwire.dev/pid"] != rs["board"].Labels["jumpwire.dev/pid"] {
		t.Error("a made child is not served by its driver's process")
	}

	// One process per configured Python instance, named after it for ps.
	pids := map[string]bool{}
	for _, p := range []string{"pypower", "shell", "storage", "group.echo", "group.serial", "board"} {
		pid := rs[p].Labels["jumpwire.dev/pid"]
		if pid == "" || pids[pid] {
			t.Errorf("%s: pid %q (seen: %v)", p, pid, pids)
		}
		pids[pid] = true
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		typ := rs[p].Labels["jumpwire.dev/type"]
		want := "jumpwire-pyhost " + p + " " + typ[strings.LastIndexByte(typ, '.')+1:] + "\x00"
		if string(comm) != p+"\n" || string(cmdline) != want {
			t.Errorf("%s: process %s named %q, command line %q; want %q, %q", p, pid, comm, cmdline, p, want)
		}
	}

	if _, err := call(t, c, rs["pypower"].Uuid, "on"); err != nil {
		t.Errorf("pypower on: %v", err)
	}
	if v, err := call(t, c, rs["shell"].Uuid, "get_methods"); err != nil || fmt.Sprint(v) != "[hang hello]" && fmt.Sprint(v) != "[hello hang]" {
		t.Errorf("shell get_methods = %v, %v", v, err)
	}
	got := streamAll(t, c, rs["shell"].Uuid, "call_method", "hello", map[string]any{}, "world")
	if len(got) == 0 || fmt.Sprint(got[0]) != "[hello world\n  0]" && !strings.Contains(fmt.Sprint(got), "hello world") {
		t.Errorf("shell call_method = %v", got)
	}
	if _, err := call(t, c, rs["board.power"].Uuid, "on"); err != nil {
		t.Errorf("board.power on: %v", err)
	}
	if v, err := call(t, c, rs["board.power.meter"].Uuid, "sync_hello", structpb.NewStringValue("x")); err != nil || v != "meter x" {
		t.Errorf("board.power.meter sync_hello = %v, %v", v, err)
	}
	// A Python exception fails that call only, with upstream's code.
	_, err := call(t, c, rs["board.power.meter"].Uuid, "raise_value")
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != "bad value" {
		t.Errorf("raise_value: %v", err)
	}
	for _, path := range []string{"group.echo", "board.console"} {
		s := open(t, rx.r, rs[path].Uuid, "connect")
		sendData(t, s, []byte("ping "+path))
		if got, err := readUntil(s, "ping "+path); err != nil {
			t.Errorf("%s: %v (got %q)", path, err, got)
		}
		_ = s.CloseSend()
	}
	s := open(t, rx.r, rs["group.serial"].Uuid, "connect")
	sendData(t, s, []byte("AT\r\n"))
	if got, err := readUntil(s, "AT\r\n"); err != nil {
		t.Errorf("serial loop://: %v (got %q)", err, got)
	}
	_ = s.CloseSend()
}

func streamAll(t *testing.T, c jumpstarterv1.ExporterServiceClient, uuid, method string, args ...any) []any {
	t.Helper()
	var vals []*structpb.Value
	for _, a := range args {
		v, err := structpb.NewValue(a)
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
	}
	s, err := c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{Uuid: uuid, Method: method, Args: vals})
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for {
		r, err := s.Recv()
		if err != nil {
			if status.Code(err) != codes.OK && !errors.Is(err, context.Canceled) && err.Error() != "EOF" {
				t.Errorf("%s: %v", method, err)
			}
			return out
		}
		out = append(out, r.Result.AsInterface())
	}
}

func sendData(t *testing.T, s jumpstarterv1.RouterService_StreamClient, b []byte) {
	t.Helper()
	if err := s.Send(&jumpstarterv1.StreamRequest{Payload: b, FrameType: jumpstarterv1.FrameType_FRAME_TYPE_DATA}); err != nil {
		t.Fatal(err)
	}
}

// readUntil reads DATA frames until they hold want.
func readUntil(s jumpstarterv1.RouterService_StreamClient, want string) (string, error) {
	var got []byte
	for !strings.Contains(string(got), want) {
		m, err := s.Recv()
		if err != nil {
			return string(got), err
		}
		got = append(got, m.Payload...)
	}
	return string(got), nil
}

// Killing a Python instance during a call gives one clear line; the next
// call works and calls to the others never fail meanwhile.
func TestPythonShellKilledMidCall(t *testing.T) {
	rx := startPython(t, mixed)
	rs := reports(t, rx.c)
	shell, power := rs["shell"].Uuid, rs["pypower"].Uuid
	pid := rx.e.Session().Pids()[shell]

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var otherErrs []error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := call(t, rx.c, power, "on"); err != nil {
				otherErrs = append(otherErrs, err)
			}
		}
	})

	hang, _ := structpb.NewValue("hang")
	env, _ := structpb.NewValue(map[string]any{})
	s, err := rx.c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{Uuid: shell, Method: "call_method", Args: []*structpb.Value{hang, env}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil { // "started": the shell runs
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = s.Recv()
	}
	want := "driver shell (jumpstarter_driver_shell.driver.Shell) was killed by SIGKILL"
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != want {
		t.Errorf("call ended with %v %q, want UNAVAILABLE %q", st.Code(), st.Message(), want)
	}
	if v, err := call(t, rx.c, shell, "get_methods"); err != nil {
		t.Fatalf("call after the kill: %v, %v", v, err)
	}
	close(stop)
	wg.Wait()
	if len(otherErrs) > 0 {
		t.Errorf("calls to pypower failed meanwhile: %v", otherErrs)
	}
	if newPid := rx.e.Session().Pids()[shell]; newPid == pid || newPid == 0 {
		t.Errorf("pid after restart %d (was %d)", newPid, pid)
	}
}

func TestPythonTypeProblems(t *testing.T) {
	py := testbin.Python(t)
	for _, tt := range []struct{ name, inst, want string }{
		{"missing package", "type: jumpstarter_driver_nosuch.driver.Thing",
			`unknown driver type "jumpstarter_driver_nosuch.driver.Thing": no Go plugin provides it and ` + py +
				` cannot import it: no module named 'jumpstarter_driver_nosuch': pip install jumpstarter-driver-nosuch`},
		// The zygote starts before the type resolves, and stops with the exporter that failed.
		{"missing package, named python", "type: jumpstarter_driver_nosuch.driver.Thing\n    plugin: python",
			`cannot import it: no module named 'jumpstarter_driver_nosuch': pip install jumpstarter-driver-nosuch`},
		{"version pin", "type: jumpstarter_driver_shell.driver.Shell\n    version: 9.9.9\n    config: {methods: {}}", `version`},
		{"bad config", "type: jumpstarter_driver_shell.driver.Shell\n    config: {timeout: 3}", `methods: required, missing`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := header + "export:\n  x:\n    " + tt.inst + "\n"
			_, err := exporter.New(t.Context(), exporter.Options{ConfigFile: writeConfig(t, yaml),
				PluginDirs: []string{testbin.PluginDir(t, "power")}, Python: py, StartTimeout: 60 * time.Second})
			if err == nil {
				t.Fatal("exporter started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
			if strings.Count(strings.TrimSpace(err.Error()), "\n") != 0 {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
	t.Run("pins that match", func(t *testing.T) {
		out, err := exec.Command(py, "-m", "jumpwire_pyhost", "inspect", "jumpstarter_driver_shell.driver.Shell").Output()
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			Types []struct{ SHA256 string } `json:"types"`
		}
		if err := json.Unmarshal(out, &answer); err != nil || len(answer.Types) != 1 || len(answer.Types[0].SHA256) != 64 {
			t.Fatalf("inspect answered %s (%v)", out, err)
		}
		yaml := header + "export:\n  x:\n    type: jumpstarter_driver_shell.driver.Shell\n    version: 0.9.0\n    sha256: " +
			answer.Types[0].SHA256 + "\n    config: {methods: {}}\n"
		e, err := exporter.New(t.Context(), exporter.Options{ConfigFile: writeConfig(t, yaml),
			PluginDirs: []string{testbin.PluginDir(t, "power")}, Python: py})
		if err != nil {
			t.Fatalf("pinned to what is installed: %v", err)
		}
		if err := e.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	t.Run("sha256 pin", func(t *testing.T) {
		yaml := header + "export:\n  x:\n    type: jumpstarter_driver_shell.driver.Shell\n    sha256: " + strings.Repeat("0", 64) + "\n    config: {methods: {}}\n"
		_, err := exporter.New(t.Context(), exporter.Options{ConfigFile: writeConfig(t, yaml),
			PluginDirs: []string{testbin.PluginDir(t, "power")}, Python: py})
		if err == nil || !strings.Contains(err.Error(), "sha256") {
			t.Errorf("a wrong sha256 pin: %v", err)
		}
	})
}

const lampModule = `from jumpstarter.driver import Driver, export
from pydantic.dataclasses import dataclass


@dataclass(kw_only=True)
class Lamp(Driver):
    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_composite.client.CompositeClient"

    @export
    def version(self) -> str:
        return "%s"
`

// After the code of a Python class changed (pip install -U, or an edited
// module on PYTHONPATH), a reload swaps its instance for one running the
// new code, with no failed call.
func TestPythonReloadSwapsChangedCode(t *testing.T) {
	py := testbin.Python(t)
	dir := t.TempDir()
	mod := filepath.Join(dir, "lampmod.py")
	if err := os.WriteFile(mod, []byte(fmt.Sprintf(lampModule, "v1")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", dir)
	rx := start(t, header+"export:\n  lamp: {type: lampmod.Lamp}\n", nil, func(o *exporter.Options) { o.Python = py })
	lamp := uuidOf(t, rx.c, "lamp")
	if v, err := call(t, rx.c, lamp, "version"); err != nil || v != "v1" {
		t.Fatalf("version = %v, %v", v, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := call(t, rx.c, lamp, "version"); err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		}
	})
	tmp := mod + ".new"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf(lampModule, "v2")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, mod); err != nil {
		t.Fatal(err)
	}
	changes, err := rx.e.Reload(t.Context())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Path != "lamp" || !strings.Contains(fmt.Sprint(changes[0]), "replaced") {
		t.Errorf("changes %+v, want lamp replaced", changes)
	}
	if len(failures) > 0 {
		t.Errorf("%d calls failed during the swap, first: %v", len(failures), failures[0])
	}
	if v, err := call(t, rx.c, lamp, "version"); err != nil || v != "v2" {
		t.Errorf("version after the reload = %v, %v; want v2", v, err)
	}
}

// Uploads reach upstream's driver-side resource API: a client's stream,
// decoded by the exporter, is what self.resource(handle) reads.
func TestPythonUploads(t *testing.T) {
	rx := startPython(t, header+`export:
  sink: {type: testdrivers.Sink}
  storage: {type: jumpstarter_driver_opendal.driver.MockStorageMux}
  flasher: {type: jumpstarter_driver_opendal.driver.MockFlasher}
`)
	data := image(3 << 20)
	sum := sha256.Sum256(data)
	for _, tt := range []struct{ path, method, enc string }{
		{"sink", "digest", ""}, {"sink", "digest", "gzip"}, {"storage", "write", "zstd"}, {"flasher", "flash", ""},
	} {
		t.Run(tt.path+" "+tt.enc, func(t *testing.T) {
			rig := &uploadRig{c: rx.c, r: rx.r, sink: uuidOf(t, rx.c, tt.path)}
			s, handle, _ := rig.upload(t.Context(), t, tt.enc)
			sent := make(chan error, 1)
			go func() { sent <- send(s, encode(t, tt.enc, data)) }()
			v, err := call(t, rx.c, rig.sink, tt.method, handle)
			if err != nil {
				t.Fatalf("%s: %v", tt.method, err)
			}
			if tt.method == "digest" {
				if want := fmt.Sprintf("%d:%s", len(data), hex.EncodeToString(sum[:])); v != want {
					t.Errorf("the driver read %v, want %s", v, want)
				}
			}
			if err := <-sent; err != nil {
				t.Errorf("upload stream: %v", err)
			}
		})
	}
}

// The zygote's death takes its instances with it; they restart, forked from
// a new zygote, and calls wait for them.
func TestPythonZygoteKilled(t *testing.T) {
	rx := startPython(t, header+"export:\n  pypower: {type: jumpstarter_driver_power.driver.MockPower, plugin: python}\n")
	power := uuidOf(t, rx.c, "pypower")
	pid := rx.e.Session().Pids()[power]
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	var zygote int
	if _, err := fmt.Sscanf(s[strings.LastIndexByte(s, ')')+2:], "%s %d", new(string), &zygote); err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", zygote))
	if !strings.Contains(string(cmdline), "zygote") {
		t.Fatalf("the instance's parent %d is %q, not the zygote", zygote, cmdline)
	}
	if err := syscall.Kill(zygote, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := call(t, rx.c, power, "on"); err != nil {
		t.Fatalf("call after the zygote died: %v", err)
	}
	if now := rx.e.Session().Pids()[power]; now == pid || now == 0 {
		t.Errorf("pid after the restart %d (was %d)", now, pid)
	}
}
