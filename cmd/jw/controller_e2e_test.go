package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/controllertest"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// TestRunControllerMode: `jw run` on an exporter file with endpoint and
// token joins the controller, `jw status` shows the link and the lease, the
// log says each transition once, and SIGTERM says goodbye (OFFLINE,
// Unregister).
func TestRunControllerMode(t *testing.T) {
	d, err := controllertest.New(controllertest.Options{NotReadyCalls: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	token := d.AddExporter("lab", "e2e-ctl")
	file := filepath.Join(t.TempDir(), "exporter.yaml")
	cfg := fmt.Sprintf(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {namespace: lab, name: e2e-ctl}
endpoint: %q
token: %q
tls: {ca: %q}
export:
  power: {type: power}
`, d.ControllerAddr(), token, base64.StdEncoding.EncodeToString(d.CA()))
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	jwBin := jwBinary(t)
	sock := filepath.Join(t.TempDir(), "e.sock")
	cmd := exec.Command(jwBin, "run", "-c", file, "--listen", "unix://"+sock)
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := d.WaitStatus(ctx, "e2e-ctl", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	want := fmt.Sprintf("AVAILABLE (version 1): waiting for the controller to assign a lease\ncontroller %s: registered; no lease\n", d.ControllerAddr())
	if r := jw(t, "unix://"+sock, "status"); !strings.HasPrefix(r.stdout, want) || r.code != 0 {
		t.Errorf("jw status before a lease (exit %d):\n%s%s\nwant it to start with:\n%s", r.code, r.stdout, r.stderr, want)
	}

	lease, err := d.AssignLease("e2e-ctl", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitStatus(ctx, "e2e-ctl", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY); err != nil {
		t.Fatal(err)
	}
	r := jw(t, "unix://"+sock, "status")
	if line := fmt.Sprintf("controller %s: registered; lease %s held by alice\n", d.ControllerAddr(), lease); !strings.Contains(r.stdout, line) {
		t.Errorf("jw status during the lease:\n%s\nwant a line %q", r.stdout, line)
	}

	var doc struct {
		Status     string `json:"status"`
		Controller struct {
			Endpoint, Lease, Client string
			Registered              bool
		} `json:"controller"`
	}
	if err := json.Unmarshal([]byte(jw(t, "unix://"+sock, "-o", "json", "status").stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if c := doc.Controller; doc.Status != "LEASE_READY" || !c.Registered || c.Lease != lease || c.Client != "alice" || c.Endpoint != d.ControllerAddr() {
		t.Errorf("jw -o json status: %+v", doc)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("jw run after SIGTERM: %v\n%s", err, stderr.String())
	}
	if x := d.Exporter("e2e-ctl"); !x.Unregistered || x.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE {
		t.Errorf("after SIGTERM the controller has %v, unregistered %v; want OFFLINE, unregistered", x.Status, x.Unregistered)
	}
	log := stderr.String()
	for _, line := range []string{
		"the controller is not ready yet; retrying",
		"registered with the controller",
		"lease started",
		"lease ready: clients may connect through the router",
		"unregistered from the controller",
	} {
		if n := strings.Count(log, line); n != 1 {
			t.Errorf("the log says %q %d times, want once:\n%s", line, n, log)
		}
	}
	if !strings.Contains(stdout.String(), "joins the controller at "+d.ControllerAddr()) {
		t.Errorf("stdout: %q", stdout.String())
	}
}
