package client_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// dial starts fake and returns a client connected to it.
func dial(t *testing.T, fake *fakeexporter.Exporter) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), fake.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDialTargets(t *testing.T) {
	sock := fakeexporter.Lab().Start(t)
	for name, target := range map[string]string{
		"bare path":   sock,
		"unix URL":    "unix://" + sock,
		"unix opaque": "unix:" + sock,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := client.Dial(t.Context(), target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tree, err := c.Tree(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tree.Name != "lab-1" {
				t.Errorf("tree name %q, want lab-1", tree.Name)
			}
		})
	}
	t.Run("relative path", func(t *testing.T) {
		t.Chdir(filepath.Dir(sock))
		c, err := client.Dial(t.Context(), filepath.Base(sock))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Tree(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	// Upstream's shell sets a bare path; older jw shells set unix://.
	for _, env := range []string{sock, "unix://" + sock} {
		t.Run("environment "+env, func(t *testing.T) {
			t.Setenv(client.HostEnv, env)
			c, err := client.Dial(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Status(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := fakeexporter.SocketPath(t)
	lis, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = lis.Close() // the socket file stays, nobody listens

	tests := []struct {
		name, target, env string
		is                error
		want              string
	}{
		{"no host", "", "", client.ErrNoHost,
			`JUMPSTARTER_HOST is not set (run inside "jw shell" or pass the exporter's socket)`},
		{"missing socket", filepath.Join(dir, "x.sock"), "", client.ErrUnreachable,
			"cannot reach exporter at " + filepath.Join(dir, "x.sock") + ": no such file"},
		{"missing socket from environment", "", filepath.Join(dir, "y.sock"), client.ErrUnreachable,
			"cannot reach exporter at " + filepath.Join(dir, "y.sock") + ": no such file"},
		{"nobody listening", "unix://" + stale, "", client.ErrUnreachable,
			"cannot reach exporter at " + stale + ": connection refused (nothing listens on the socket)"},
		{"not a socket", plain, "", client.ErrUnreachable,
			"cannot reach exporter at " + plain + ": connection refused (nothing listens on the socket)"},
		{"unknown scheme", "ftp://lab", "", nil,
			`exporter address "ftp://lab": want unix:///path/to.sock, a path, or tcp://HOST:PORT`},
		{"empty unix", "unix://", "", nil, `exporter address "unix://": no socket path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(client.HostEnv, tt.env)
			c, err := client.Dial(t.Context(), tt.target)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) is false", tt.is)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	c := dial(t, fakeexporter.Lab())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestExporterGoesAway(t *testing.T) {
	fake := fakeexporter.Lab()
	sock := fakeexporter.SocketPath(t)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stop := fake.Serve(lis)
	defer stop()
	c, err := client.Dial(t.Context(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stop()

	power, _ := tree.Lookup("power")
	_, err = c.Call(t.Context(), power.UUID, "on")
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("error %v is not ErrUnreachable", err)
	}
	if !strings.HasPrefix(err.Error(), "cannot reach exporter at "+sock+": ") {
		t.Errorf("error %q does not name the socket", err)
	}
	if strings.ContainsAny(err.Error(), "\n") {
		t.Errorf("error %q spans lines", err)
	}
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("status code %v, want Unavailable", got)
	}
}

func TestStatusAndEndSession(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Status = &jumpstarterv1.GetStatusResponse{
		Status:        jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY,
		StatusVersion: 3,
	}
	msg := "no session"
	fake.EndSessionResult = &jumpstarterv1.EndSessionResponse{Success: false, Message: &msg}
	c := dial(t, fake)

	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.GetStatus() != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY || st.GetStatusVersion() != 3 {
		t.Errorf("status %v version %d", st.GetStatus(), st.GetStatusVersion())
	}
	ok, message, err := c.EndSession(t.Context())
	if err != nil || ok || message != "no session" {
		t.Errorf("EndSession = %v, %q, %v; want false, \"no session\", nil", ok, message, err)
	}
}

func TestRaw(t *testing.T) {
	c := dial(t, fakeexporter.Lab())
	if _, err := c.Raw().GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Raw().Reset(t.Context(), &jumpstarterv1.ResetRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Reset on the fake: %v, want Unimplemented", err)
	}
}
