package exporter_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestErrorKindsEndToEnd: the error kind a driver returns is the code a
// client of the exporter sees, with the driver's sentence, for every SDK
// error kind and every way of calling: a unary call, a streaming call and
// Reset. The driver runs in a real plugin process behind the exporter; the
// client is the Go client library.
func TestErrorKindsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if err := os.Link(testbin.Build(t, "./internal/testplugins/faulty"), filepath.Join(dir, "jumpwire-driver-faulty")); err != nil {
		t.Fatal(err)
	}
	rx := start(t, header+"export:\n  dut:\n    children:\n      faulty:\n        type: faulty\n", nil,
		func(o *exporter.Options) { o.PluginDirs = []string{dir} })
	c, err := client.Dial(t.Context(), "unix://"+rx.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	faulty, err := tree.Lookup("dut.faulty")
	if err != nil {
		t.Fatal(err)
	}

	// want checks the code and the message the client's error carries,
	// and the one line a user reads.
	want := func(t *testing.T, what string, err error, code codes.Code, msg, line string) {
		t.Helper()
		s, _ := status.FromError(err)
		if s.Code() != code || s.Message() != msg {
			t.Errorf("%s: got %v %q, want %v %q", what, s.Code(), s.Message(), code, msg)
		}
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: %T is not a *client.Error", what, err)
		} else if ce.Code() != code || err.Error() != line {
			t.Errorf("%s: client error %v %q, want %v %q", what, ce.Code(), err.Error(), code, line)
		}
	}
	for _, k := range []struct {
		kind, words string
		code        codes.Code
	}{
		{"not_found", "not found", codes.NotFound},
		{"unsupported", "unimplemented", codes.Unimplemented},
		{"invalid_argument", "invalid argument", codes.InvalidArgument},
		{"unavailable", "unavailable", codes.Unavailable},
		{"io", "internal", codes.Internal},
		{"busy", "failed precondition", codes.FailedPrecondition},
	} {
		t.Run(k.kind, func(t *testing.T) {
			msg := "the board says " + k.kind
			_, err := c.Call(t.Context(), faulty.UUID, "fail", k.kind, msg)
			want(t, "fail", err, k.code, msg, "dut.faulty.fail: "+k.words+": "+msg)

			var got []any
			for v, err := range c.StreamingCall(t.Context(), faulty.UUID, "fail_streaming", k.kind, msg) {
				if err != nil {
					want(t, "fail_streaming", err, k.code, msg, "dut.faulty.fail_streaming: "+k.words+": "+msg)
					break
				}
				got = append(got, v)
			}
			if len(got) != 1 || got[0] != "first" {
				t.Errorf("fail_streaming yielded %v before failing, want [first]", got)
			}

			if _, err := c.Call(t.Context(), faulty.UUID, "fail_reset", k.kind, msg); err != nil {
				t.Fatal(err)
			}
			_, err = c.Raw().Reset(t.Context(), &jumpstarterv1.ResetRequest{})
			if s := status.Convert(err); s.Code() != k.code || s.Message() != "reset dut.faulty: "+msg {
				t.Errorf("Reset: got %v %q, want %v %q", s.Code(), s.Message(), k.code, "reset dut.faulty: "+msg)
			}
		})
	}
}
