package exporter_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// running is an exporter a test started, served on a unix socket, with
// clients of its services. Everything stops when the test ends.
type running struct {
	e      *exporter.Exporter
	c      jumpstarterv1.ExporterServiceClient
	r      jumpstarterv1.RouterServiceClient
	file   string     // the config file, for tests that rewrite it
	sock   string     // the unix socket it serves on
	served chan error // Serve's result
}

// start starts an exporter on the config yaml, with the first-party
// drivers named in drivers (default: power) on its plugin path; opts may
// adjust the options before New.
func start(t testing.TB, yaml string, drivers []string, opts ...func(*exporter.Options)) *running {
	t.Helper()
	if len(drivers) == 0 {
		drivers = []string{"power"}
	}
	o := exporter.Options{ConfigFile: writeConfig(t, yaml), PluginDirs: []string{testbin.PluginDir(t, drivers...)}}
	for _, opt := range opts {
		opt(&o)
	}
	e, err := exporter.New(t.Context(), o)
	if err != nil {
		t.Fatalf("exporter.New: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "e.sock")
	lis, err := exporter.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rx := &running{e: e, file: o.ConfigFile, sock: sock, served: make(chan error, 1)}
	go func() { rx.served <- e.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	rx.c, rx.r = jumpstarterv1.NewExporterServiceClient(conn), jumpstarterv1.NewRouterServiceClient(conn)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rx
}
