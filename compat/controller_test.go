package compat

import (
	"context"
	"encoding/base64"
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

// TestUpstreamClientThroughController: jumpwire in controller mode (`jw
// run` on an exporter file with endpoint, token and tls.ca) registers with
// the controller double; upstream's client, holding a lease, reaches it
// through the double's router with upstream's own Dial and router stream
// code (lease_shell.py), and `j power on` and the suite pass there.
func TestUpstreamClientThroughController(t *testing.T) {
	s := setup(t)
	d, err := controllertest.New(controllertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	token := d.AddExporter("default", "compat")
	clientToken := d.AddClient("alice")
	ca := base64.StdEncoding.EncodeToString(d.CA())
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "endpoint: \"\"\ntoken: \"\"\n",
		"endpoint: \""+d.ControllerAddr()+"\"\ntoken: \""+token+"\"\ntls: {ca: \""+ca+"\"}\n", 1)
	file := filepath.Join(t.TempDir(), "controlled.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(s.jw, "run", "-c", file, "--listen", "unix://"+filepath.Join(t.TempDir(), "e.sock"))
	run.Env, run.Dir = s.env, s.root
	var log strings.Builder
	run.Stdout, run.Stderr = &log, &log
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = run.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = run.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = run.Process.Kill()
			<-done
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := d.WaitStatus(ctx, "compat", jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	lease, err := d.AssignLease("compat", "alice")
	if err != nil {
		t.Fatal(err)
	}
	shell := []string{s.venvBin("python"), filepath.Join(s.root, "compat", "lease_shell.py"),
		d.ControllerAddr(), "default", "alice", clientToken, ca, lease, "--"}
	s.run(t, append(shell, s.venvBin("j"), "power", "on"), nil)
	// Not the EndSession test: it goes on calling GetStatus on the
	// connection after the session ended, which in controller mode ends the
	// lease, and with it the client's connections (upstream's exporter
	// closes them when the controller confirms the end, which the double
	// does at once).
	s.run(t, append(append(shell, s.pytest...), "-k", "not end_session"), nil)
	if n := d.Streams(); n < 2 {
		t.Errorf("the router carried %d streams; want every connection of the client through it", n)
	}
}
