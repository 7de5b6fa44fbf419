package exporter_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/controllertest"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	ready     = jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY
	available = jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE
)

// newDouble starts a controller and router double for the test.
func newDouble(t *testing.T, opts controllertest.Options) *controllertest.Double {
	t.Helper()
	d, err := controllertest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// controlledConfig is an exporter file for the double, as `jmp admin
// create exporter` writes one (tls.ca base64), with body appended.
func controlledConfig(d *controllertest.Double, name, token, body string) string {
	return fmt.Sprintf(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: lab, name: %s}
endpoint: %q
token: %q
tls: {ca: %q}
`, name, d.ControllerAddr(), token, base64.StdEncoding.EncodeToString(d.CA())) + body
}

// controlled is an exporter in controller mode that a test runs.
type controlled struct {
	e    *exporter.Exporter
	dir  string // its plugin directory
	stop func() // stops it as SIGTERM would: Serve returns (goodbye), then Close
}

// runControlled starts an exporter on a config file with the named plugins
// (default power; "faulty" is the faulty test plugin), and stops it when
// the test ends unless the test did.
func runControlled(t *testing.T, file string, drivers ...string) *controlled {
	t.Helper()
	if len(drivers) == 0 {
		drivers = []string{"power"}
	}
	faulty := slices.Contains(drivers, "faulty")
	dir := testbin.PluginDir(t, slices.DeleteFunc(drivers, func(d string) bool { return d == "faulty" })...)
	if faulty {
		if err := os.Link(testbin.Build(t, "./internal/testplugins/faulty"), filepath.Join(dir, "jumpwire-driver-faulty")); err != nil {
			t.Fatal(err)
		}
	}
	e, err := exporter.New(t.Context(), exporter.Options{ConfigFile: file, PluginDirs: []string{dir}})
	if err != nil {
		t.Fatalf("exporter.New: %v", err)
	}
	lis, err := exporter.Listen("unix://" + filepath.Join(t.TempDir(), "e.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.Serve(ctx, lis) }()
	stopped := false
	c := &controlled{e: e, dir: dir}
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(c.stop)
	return c
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leaseClient connects to a lease through the router, as a client does.
func leaseClient(t *testing.T, d *controllertest.Double, lease string) (jumpstarterv1.ExporterServiceClient, jumpstarterv1.RouterServiceClient) {
	t.Helper()
	conn, err := d.Connect(lease)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return jumpstarterv1.NewExporterServiceClient(conn), jumpstarterv1.NewRouterServiceClient(conn)
}

// openStream opens a driver byte stream on a router-carried connection.
func openStream(t *testing.T, r jumpstarterv1.RouterServiceClient, uuid, method string) jumpstarterv1.RouterService_StreamClient {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "request", fmt.Sprintf(`{"kind":"driver","uuid":%q,"method":%q}`, uuid, method))
	s, err := r.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil {
		t.Fatalf("stream headers: %v", err)
	}
	return s
}

// echo sends p on a stream to an echo server and reads it back.
func echo(t *testing.T, s jumpstarterv1.RouterService_StreamClient, p []byte) {
	t.Helper()
	if err := s.Send(&jumpstarterv1.StreamRequest{Payload: p}); err != nil {
		t.Fatalf("send: %v", err)
	}
	var got []byte
	for len(got) < len(p) {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("echo of %q: got %q, then %v", p, got, err)
		}
		got = append(got, m.Payload...)
	}
	if !bytes.Equal(got, p) {
		t.Fatalf("echo: got %q, want %q", got, p)
	}
}

// TestControllerLease: an exporter registers, serves a lease through the
// router to two client connections (calls on one, a byte stream on the
// other), runs its hooks around the lease, and is AVAILABLE after it.
func TestControllerLease(t *testing.T) {
	d := newDouble(t, controllertest.Options{NotReadyCalls: 2, NoServiceEndpoints: true})
	token := d.AddExporter("lab", "ctl-1")
	addr := echoServer(t)
	file := writeConfig(t, controlledConfig(d, "ctl-1", token, fmt.Sprintf(`hooks:
  beforeLease: {script: "echo before", timeout: 30}
  afterLease: {script: "echo after", timeout: 30}
export:
  power: {type: power}
  net: {type: tcp, config: {host: 127.0.0.1, port: %d}}
`, addr.Port)))
	x := runControlled(t, file, "power", "network")
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-1", available); err != nil {
		t.Fatal(err)
	}
	reg := d.Exporter("ctl-1")
	if reg.Registrations < 1 || len(reg.Devices) != 3 || reg.Labels["jumpstarter.dev/name"] != "ctl-1" {
		t.Fatalf("registration: %d times, %d devices, labels %v; want 3 devices (root, power, net) and the name label",
			reg.Registrations, len(reg.Devices), reg.Labels)
	}
	if st, ok := x.e.ControllerStatus(); !ok || !st.Registered || st.Endpoint != d.ControllerAddr() {
		t.Errorf("ControllerStatus = %+v, %v; want registered with %s", st, ok, d.ControllerAddr())
	}

	lease, err := d.AssignLease("ctl-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitStatus(ctx, "ctl-1", ready); err != nil {
		t.Fatal(err)
	}
	if h := d.Exporter("ctl-1").History; !slices.Contains(h, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK) {
		t.Errorf("reported statuses %v: no BEFORE_LEASE_HOOK before LEASE_READY", h)
	}
	if st, _ := x.e.ControllerStatus(); st.LeaseName != lease || st.ClientName != "alice" {
		t.Errorf("ControllerStatus lease %q client %q; want %q alice", st.LeaseName, st.ClientName, lease)
	}

	c1, _ := leaseClient(t, d, lease)
	c2, r2 := leaseClient(t, d, lease)
	power := uuidOf(t, c1, "power")
	if _, err := call(t, c1, power, "on"); err != nil {
		t.Fatalf("power on through the router: %v", err)
	}
	if v, err := call(t, c1, power, "state"); err != nil || v != true {
		t.Fatalf("state = %v, %v; want true", v, err)
	}
	s := openStream(t, r2, uuidOf(t, c2, "net"), "connect")
	echo(t, s, []byte("hello through the router"))
	if n := d.Streams(); n < 2 {
		t.Errorf("router paired %d streams; want one per client connection (2)", n)
	}

	d.EndLease(lease)
	if err := d.WaitStatus(ctx, "ctl-1", available); err != nil {
		t.Fatal(err)
	}
	h := d.Exporter("ctl-1").History
	if i := slices.Index(h, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AFTER_LEASE_HOOK); i < 0 || h[len(h)-1] != available {
		t.Errorf("reported statuses %v: want AFTER_LEASE_HOOK, then AVAILABLE last", h)
	}
	if _, err := s.Recv(); err == nil {
		for err == nil {
			_, err = s.Recv()
		}
	}
	if _, err := c1.GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{}); err == nil {
		t.Error("a call on the ended lease's connection succeeded")
	}
}

// leaseReady assigns a lease and waits until the exporter is LEASE_READY.
func leaseReady(ctx context.Context, t *testing.T, d *controllertest.Double, exporter, client string) string {
	t.Helper()
	var lease string
	err := d.Wait(ctx, func() bool { return true }) // let a pending AVAILABLE land
	for err == nil {
		if lease, err = d.AssignLease(exporter, client); err == nil {
			break
		}
		select { // not AVAILABLE yet: wait for the next change
		case <-ctx.Done():
			t.Fatalf("assign lease: %v", err)
		case <-time.After(20 * time.Millisecond):
			err = nil
		}
	}
	if err := d.WaitStatus(ctx, exporter, ready); err != nil {
		t.Fatal(err)
	}
	return lease
}

// TestControllerRestartMidLease: the controller goes away mid-lease and
// comes back; an open byte stream and the client's connection keep working
// throughout, the exporter registers again with the same uuids, and the
// lease ends normally afterwards.
func TestControllerRestartMidLease(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-r")
	addr := echoServer(t)
	x := runControlled(t, writeConfig(t, controlledConfig(d, "ctl-r", token, fmt.Sprintf(`export:
  power: {type: power}
  net: {type: tcp, config: {host: 127.0.0.1, port: %d}}
`, addr.Port))), "power", "network")
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-r", available); err != nil {
		t.Fatal(err)
	}
	lease := leaseReady(ctx, t, d, "ctl-r", "bob")
	c, r := leaseClient(t, d, lease)
	s := openStream(t, r, uuidOf(t, c, "net"), "connect")
	echo(t, s, []byte("before"))
	before := d.Exporter("ctl-r")

	d.StopController()
	poll(ctx, t, "the exporter to notice the controller is gone", func() bool {
		st, _ := x.e.ControllerStatus()
		return !st.Registered && st.LastError != ""
	})
	echo(t, s, []byte("while the controller is down"))
	power := uuidOf(t, c, "power")
	if _, err := call(t, c, power, "on"); err != nil {
		t.Fatalf("a call while the controller is down: %v", err)
	}
	if err := d.StartController(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(ctx, func() bool {
		return d.Listening(lease) && d.Exporter("ctl-r").Registrations > before.Registrations
	}); err != nil {
		t.Fatalf("the exporter did not register and listen on its lease again: %v", err)
	}
	after := d.Exporter("ctl-r")
	for i := range before.Devices {
		if before.Devices[i].Uuid != after.Devices[i].Uuid {
			t.Errorf("device %d: uuid %s -> %s across re-registration", i, before.Devices[i].Uuid, after.Devices[i].Uuid)
		}
	}
	echo(t, s, []byte("after"))
	if v, err := call(t, c, power, "state"); err != nil || v != true {
		t.Fatalf("state after the restart = %v, %v; want true", v, err)
	}
	// A new client connection after the restart goes through.
	c2, _ := leaseClient(t, d, lease)
	if _, err := c2.GetReport(t.Context(), &emptypb.Empty{}); err != nil {
		t.Fatalf("a new connection after the restart: %v", err)
	}
	d.EndLease(lease)
	if err := d.WaitStatus(ctx, "ctl-r", available); err != nil {
		t.Fatal(err)
	}
}

// poll waits for cond, failing the test at ctx's end.
func poll(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestControllerExporterRestart: an exporter stopped mid-lease says
// goodbye (OFFLINE, Unregister) without ending the lease; started again it
// registers with the same uuids, takes the lease back and serves it.
func TestControllerExporterRestart(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-x")
	file := writeConfig(t, controlledConfig(d, "ctl-x", token, "export:\n  power: {type: power}\n"))
	x := runControlled(t, file)
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-x", available); err != nil {
		t.Fatal(err)
	}
	lease := leaseReady(ctx, t, d, "ctl-x", "carol")
	devices := d.Exporter("ctl-x").Devices
	x.stop()
	gone := d.Exporter("ctl-x")
	if gone.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE || !gone.Unregistered {
		t.Fatalf("after stop: status %v, unregistered %v; want OFFLINE and unregistered", gone.Status, gone.Unregistered)
	}
	if d.Lease(lease).Ended {
		t.Fatal("stopping the exporter ended the lease")
	}

	runControlled(t, file)
	if err := d.WaitStatus(ctx, "ctl-x", ready); err != nil {
		t.Fatal(err)
	}
	back := d.Exporter("ctl-x")
	for i := range devices {
		if devices[i].Uuid != back.Devices[i].Uuid {
			t.Errorf("device %d: uuid %s -> %s across the restart", i, devices[i].Uuid, back.Devices[i].Uuid)
		}
	}
	c, _ := leaseClient(t, d, lease)
	if _, err := call(t, c, uuidOf(t, c, "power"), "on"); err != nil {
		t.Fatalf("a call after the exporter's restart: %v", err)
	}
}

// TestControllerFailingHooks: a before-lease hook that fails with
// onFailure: endLease ends and releases the lease; an after-lease hook
// that hangs is killed at its timeout. Neither leaves the exporter in a
// hook state: it is AVAILABLE and takes the next lease.
func TestControllerFailingHooks(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-h")
	file := writeConfig(t, controlledConfig(d, "ctl-h", token, `hooks:
  beforeLease: {script: "test -e go-on || exit 3", timeout: 30, onFailure: endLease}
  afterLease: {script: "sleep 600", timeout: 1}
export:
  power: {type: power}
`))
	runControlled(t, file)
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-h", available); err != nil {
		t.Fatal(err)
	}
	lease, err := d.AssignLease("ctl-h", "dave")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(ctx, func() bool { return d.Lease(lease).Ended }); err != nil {
		t.Fatal("the lease did not end after its before-lease hook failed")
	}
	if err := d.WaitStatus(ctx, "ctl-h", available); err != nil {
		t.Fatal(err)
	}
	if by := d.Lease(lease).ReleasedBy; by != "exporter" {
		t.Errorf("lease released by %q; want the exporter", by)
	}
	if h := d.Exporter("ctl-h").History; !slices.Contains(h, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK_FAILED) {
		t.Errorf("reported statuses %v: no BEFORE_LEASE_HOOK_FAILED", h)
	}

	// The next lease gets past its hook; its after-lease hook hangs.
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "go-on"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	lease2 := leaseReady(ctx, t, d, "ctl-h", "dave")
	d.EndLease(lease2)
	if err := d.WaitStatus(ctx, "ctl-h", available); err != nil {
		t.Fatal(err)
	}
	if x := d.Exporter("ctl-h"); !strings.Contains(x.Message, "afterLease hook timed out") {
		t.Errorf("AVAILABLE with message %q; want it to say the after-lease hook timed out", x.Message)
	}
}

// TestControllerEndSessionDuringOutage: a client ends its session while
// the controller is down (the router still carries it): the after-lease
// hook runs and the exporter is AVAILABLE at once; the release that could
// not get through is made when the controller is back.
func TestControllerEndSessionDuringOutage(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-o")
	x := runControlled(t, writeConfig(t, controlledConfig(d, "ctl-o", token, "export:\n  power: {type: power}\n")))
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-o", available); err != nil {
		t.Fatal(err)
	}
	lease := leaseReady(ctx, t, d, "ctl-o", "grace")
	c, _ := leaseClient(t, d, lease)
	if _, err := c.GetReport(t.Context(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	d.StopController()
	r, err := c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{})
	if err != nil || !r.Success {
		t.Fatalf("EndSession while the controller is down: %v, %v", r, err)
	}
	if st, _ := x.e.Status(); st.Status != available {
		t.Fatalf("after EndSession the exporter is %v, want AVAILABLE", st.Status)
	}
	if d.Lease(lease).Ended {
		t.Fatal("the lease ended while the controller was down")
	}
	if err := d.StartController(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(ctx, func() bool { return d.Lease(lease).Ended }); err != nil {
		t.Fatalf("the lease was not released after the controller came back: %v", err)
	}
	if by := d.Lease(lease).ReleasedBy; by != "exporter" {
		t.Errorf("lease released by %q; want the exporter", by)
	}
	if err := d.WaitStatus(ctx, "ctl-o", available); err != nil {
		t.Fatal(err)
	}
	leaseReady(ctx, t, d, "ctl-o", "grace") // and it takes the next one
}

// TestControllerSwapUnderLease: a driver binary replaced mid-lease is
// swapped without ending the lease, and the controller is told the new
// version by a new registration.
func TestControllerSwapUnderLease(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-s")
	x := runControlled(t, writeConfig(t, controlledConfig(d, "ctl-s", token, "export:\n  power: {type: power}\n")))
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-s", available); err != nil {
		t.Fatal(err)
	}
	lease := leaseReady(ctx, t, d, "ctl-s", "erin")
	c, _ := leaseClient(t, d, lease)
	power := uuidOf(t, c, "power")
	regs := d.Exporter("ctl-s").Registrations

	v2 := testbin.Build(t, "./drivers/power/cmd/jumpwire-driver-power", "-ldflags=-X main.version=0.2.0")
	b, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(x.dir, ".new")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(x.dir, "jumpwire-driver-power")); err != nil {
		t.Fatal(err)
	}
	changes, err := x.e.Reload(t.Context())
	if err != nil || len(changes) != 1 || changes[0].Err != nil {
		t.Fatalf("reload: %v, %v", changeLines(changes), err)
	}
	version := func() string {
		for _, dev := range d.Exporter("ctl-s").Devices {
			if dev.Uuid == power {
				return dev.Labels["jumpwire.dev/version"]
			}
		}
		return ""
	}
	if err := d.Wait(ctx, func() bool { return d.Exporter("ctl-s").Registrations > regs && version() == "0.2.0" }); err != nil {
		t.Fatalf("the controller holds version %q after the swap; want 0.2.0 from a new registration", version())
	}
	if st := d.Exporter("ctl-s"); st.Status != ready || st.LeaseName != lease {
		t.Fatalf("after the swap: %v, lease %q; want LEASE_READY on %s", st.Status, st.LeaseName, lease)
	}
	if _, err := call(t, c, power, "on"); err != nil {
		t.Fatalf("a call after the swap, on the same connection: %v", err)
	}
}

// TestControllerEndSessionOldController: a client's EndSession ends the
// lease: the after-lease hook runs, then the exporter releases the lease.
// This controller is an older one: it is not ready for its first calls,
// has no GetServiceEndpoints, and refuses ReleaseLease from exporters, so
// the release goes through ReportStatus(release_lease).
func TestControllerEndSessionOldController(t *testing.T) {
	d := newDouble(t, controllertest.Options{NotReadyCalls: 3, NoServiceEndpoints: true, OldRelease: true})
	token := d.AddExporter("lab", "ctl-e")
	runControlled(t, writeConfig(t, controlledConfig(d, "ctl-e", token, `hooks:
  afterLease: {script: "echo bye", timeout: 30}
export:
  power: {type: power}
`)))
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-e", available); err != nil {
		t.Fatal(err)
	}
	lease := leaseReady(ctx, t, d, "ctl-e", "frank")
	c, _ := leaseClient(t, d, lease)
	r, err := c.EndSession(t.Context(), &jumpstarterv1.EndSessionRequest{})
	if err != nil || !r.Success {
		t.Fatalf("EndSession: %v, %v", r, err)
	}
	if l := d.Lease(lease); !l.Ended || l.ReleasedBy != "exporter (ReportStatus)" {
		t.Fatalf("after EndSession: ended %v by %q; want released by the exporter through ReportStatus", l.Ended, l.ReleasedBy)
	}
	if err := d.WaitStatus(ctx, "ctl-e", available); err != nil {
		t.Fatal(err)
	}
	h := d.Exporter("ctl-e").History
	if !slices.Contains(h, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AFTER_LEASE_HOOK) {
		t.Errorf("reported statuses %v: no AFTER_LEASE_HOOK", h)
	}
	// The next lease is served by a fresh session.
	lease2 := leaseReady(ctx, t, d, "ctl-e", "frank")
	c2, _ := leaseClient(t, d, lease2)
	if v, err := call(t, c2, uuidOf(t, c2, "power"), "state"); err != nil || v != false {
		t.Fatalf("state in the next lease = %v, %v; want false (a fresh session)", v, err)
	}
}

// TestControllerManyExporters: three exporters on one machine register
// with one controller and are leased one after another; each client
// reaches its own exporter only.
func TestControllerManyExporters(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	ctx := waitCtx(t)
	names := []string{"bench-a", "bench-b", "bench-c"}
	for _, n := range names {
		token := d.AddExporter("lab", n)
		runControlled(t, writeConfig(t, controlledConfig(d, n, token, "export:\n  power: {type: power}\n")))
	}
	for _, n := range names {
		if err := d.WaitStatus(ctx, n, available); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range names {
		lease := leaseReady(ctx, t, d, n, "client-"+n)
		c, _ := leaseClient(t, d, lease)
		rep, err := c.GetReport(t.Context(), &emptypb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Labels["jumpstarter.dev/name"]; got != n {
			t.Fatalf("lease on %s reached exporter %q", n, got)
		}
		if _, err := call(t, c, uuidOf(t, c, "power"), "on"); err != nil {
			t.Fatal(err)
		}
		for _, other := range names {
			want := ready
			if other != n {
				want = available
			}
			if st := d.Exporter(other).Status; st != want {
				t.Errorf("lease %d on %s: %s is %v, want %v", i, n, other, st, want)
			}
		}
		d.EndLease(lease)
		if err := d.WaitStatus(ctx, n, available); err != nil {
			t.Fatal(err)
		}
	}
}

// TestControllerConfigProblems: controller settings that cannot work are
// refused at start, each with the key to fix.
func TestControllerConfigProblems(t *testing.T) {
	for _, tc := range []struct{ name, settings, want string }{
		{"no token", "endpoint: 127.0.0.1:1\n", "token: endpoint is set but token is empty"},
		{"bad ca", "endpoint: 127.0.0.1:1\ntoken: t\ntls: {ca: \"not base64!\"}\n", "tls.ca: exporter: tls.ca is neither base64 nor PEM"},
		{"ca without certificate", "endpoint: 127.0.0.1:1\ntoken: t\ntls: {ca: " + base64.StdEncoding.EncodeToString([]byte("hello")) + "}\n", "tls.ca: exporter: tls.ca holds no PEM certificate"},
		{"no port", "endpoint: controller.example.com\ntoken: t\n", `endpoint: exporter: endpoint "controller.example.com": want HOST:PORT`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeConfig(t, header+tc.settings+"export:\n  power: {type: power}\n")
			_, err := exporter.New(t.Context(), exporter.Options{ConfigFile: file, PluginDirs: []string{testbin.PluginDir(t, "power")}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestControllerExitOnLeaseEnd: with exitOnLeaseEnd the exporter serves
// one lease, then says goodbye and Serve returns without an error.
func TestControllerExitOnLeaseEnd(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-once")
	file := writeConfig(t, controlledConfig(d, "ctl-once", token, "exitOnLeaseEnd: true\nexport:\n  power: {type: power}\n"))
	e, err := exporter.New(t.Context(), exporter.Options{ConfigFile: file, PluginDirs: []string{testbin.PluginDir(t, "power")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	lis, err := exporter.Listen("unix://" + filepath.Join(t.TempDir(), "e.sock"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve(t.Context(), lis) }()
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-once", available); err != nil {
		t.Fatal(err)
	}
	d.EndLease(leaseReady(ctx, t, d, "ctl-once", "heidi"))
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after the lease: %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("the exporter kept serving after its lease")
	}
	if x := d.Exporter("ctl-once"); !x.Unregistered {
		t.Errorf("after exiting the controller has %v, unregistered %v", x.Status, x.Unregistered)
	}
}

// TestControllerDriversFailToRestart: when the session for the next lease
// cannot start (a driver rejects its config now), the exporter reports
// OFFLINE with the reason, keeps trying, and is AVAILABLE again once the
// drivers start.
func TestControllerDriversFailToRestart(t *testing.T) {
	d := newDouble(t, controllertest.Options{})
	token := d.AddExporter("lab", "ctl-f")
	stop := filepath.Join(t.TempDir(), "stop")
	runControlled(t, writeConfig(t, controlledConfig(d, "ctl-f", token, fmt.Sprintf(
		"export:\n  power: {type: power}\n  faulty: {type: faulty, config: {fail_if_exists: %q}}\n", stop))), "power", "faulty")
	ctx := waitCtx(t)
	if err := d.WaitStatus(ctx, "ctl-f", available); err != nil {
		t.Fatal(err)
	}
	lease := leaseReady(ctx, t, d, "ctl-f", "ivan")
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.EndLease(lease)
	if err := d.WaitStatus(ctx, "ctl-f", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE); err != nil {
		t.Fatal(err)
	}
	if msg := d.Exporter("ctl-f").Message; !strings.Contains(msg, "exists") {
		t.Errorf("OFFLINE with message %q; want the driver's reason", msg)
	}
	if err := os.Remove(stop); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitStatus(ctx, "ctl-f", available); err != nil {
		t.Fatal(err)
	}
	c, _ := leaseClient(t, d, leaseReady(ctx, t, d, "ctl-f", "ivan"))
	if _, err := call(t, c, uuidOf(t, c, "faulty"), "ok"); err != nil {
		t.Fatalf("a call in the lease after the drivers came back: %v", err)
	}
}
