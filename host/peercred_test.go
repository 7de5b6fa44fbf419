package host_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// syncBuffer is a log destination that tests read while plugins write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog polls until the log holds every one of want.
func waitLog(t *testing.T, log *syncBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		missing := ""
		for _, w := range want {
			if !strings.Contains(log.String(), w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say %q:\n%s", missing, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pluginSocket returns the unix socket a plugin launched with TMPDIR=dir
// listens on (go-plugin makes it in a fresh 0700 directory under TMPDIR).
func pluginSocket(t *testing.T, dir string) string {
	t.Helper()
	socks, _ := filepath.Glob(filepath.Join(dir, "plugin-dir*", "plugin*"))
	if len(socks) != 1 {
		t.Fatalf("want one plugin socket under %s, found %q", dir, socks)
	}
	fi, err := os.Stat(filepath.Dir(socks[0]))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("the socket's directory has mode %v, want 0700", fi.Mode().Perm())
	}
	return socks[0]
}

// TestPeerCredentialsRefuseOtherProcess: another process of the same user
// that finds a plugin's socket cannot use it; the plugin says why, and the
// exporter that started it is still served.
func TestPeerCredentialsRefuseOtherProcess(t *testing.T) {
	binary := testPlugin(t, "faulty") // before TMPDIR changes: test binaries outlive this test
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	log := &syncBuffer{}
	p, err := host.Launch(t.Context(), host.LaunchOptions{
		Binary: binary,
		Logger: hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Info}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	sock := pluginSocket(t, tmp)

	// The test binary, run again, is the other process.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDial$")
	cmd.Env = append(os.Environ(), "JUMPWIRE_TEST_DIAL="+sock)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dialing process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "describe failed:") {
		t.Fatalf("another process was served by the plugin:\n%s", out)
	}
	waitLog(t, log, "refused a connection", fmt.Sprintf("not the exporter that started this plugin (pid %d)", os.Getpid()))

	if _, err := p.RPC().Describe(t.Context(), &pluginv1.DescribeRequest{}); err != nil {
		t.Fatalf("the exporter is no longer served after the refusal: %v", err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(environ, []byte("PLUGIN_CLIENT_CERT=")) {
		t.Error("the plugin was launched with PLUGIN_CLIENT_CERT: the host still asks for AutoMTLS")
	}
}

// TestHelperDial is the other process of TestPeerCredentialsRefuseOtherProcess.
func TestHelperDial(t *testing.T) {
	sock := os.Getenv("JUMPWIRE_TEST_DIAL")
	if sock == "" {
		t.Skip("run by TestPeerCredentialsRefuseOtherProcess")
	}
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := pluginv1.NewDriverClient(cc).Describe(ctx, &pluginv1.DescribeRequest{}); err != nil {
		fmt.Println("describe failed:", err)
		return
	}
	fmt.Println("describe succeeded")
}

// TestPeerCredentialsRefuseNonParent: a plugin started by some other process
// (here a shell between the exporter and the plugin) refuses to serve the
// exporter, and the exporter refuses a socket whose process is not the one
// it started. The launch fails saying so.
func TestPeerCredentialsRefuseNonParent(t *testing.T) {
	plugin := testPlugin(t, "faulty")
	wrapper := filepath.Join(t.TempDir(), "wrapper")
	script := fmt.Sprintf("#!/bin/sh\n%q &\nwait\n", plugin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p, err := host.Launch(ctx, host.LaunchOptions{
		Binary:       wrapper,
		Logger:       hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Info}),
		StartTimeout: 5 * time.Second,
	})
	if err == nil {
		p.Stop()
		t.Fatal("a plugin behind a wrapper was served and answered")
	}
	if !strings.Contains(err.Error(), "not the plugin this exporter started") {
		t.Errorf("launch error does not say the plugin's pid was refused: %v", err)
	}
	waitLog(t, log, "refused a connection to the plugin", "refused a connection", "not the exporter that started this plugin")
	waitGone(t, "the plugin behind the wrapper", func() []int { return running(plugin) })
}
