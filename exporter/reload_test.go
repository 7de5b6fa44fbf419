package exporter_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// reloadable starts an exporter on a config file the test rewrites, with a
// plugin directory the test may change.
func reloadable(t *testing.T, yaml string) (*exporter.Exporter, jumpstarterv1.ExporterServiceClient, string, string) {
	t.Helper()
	dir := testbin.PluginDir(t, "power")
	rx := start(t, yaml, nil, func(o *exporter.Options) { o.PluginDirs = []string{dir} })
	return rx.e, rx.c, rx.file, dir
}

func rewrite(t *testing.T, file, yaml string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func changeLines(changes []exporter.Change) []string {
	var out []string
	for _, c := range changes {
		line := c.Path + " " + c.Action
		if c.Detail != "" {
			line += " (" + c.Detail + ")"
		}
		if c.Err != nil {
			line += ": " + status.Convert(c.Err).Message()
		}
		out = append(out, line)
	}
	return out
}

func TestReloadTouchesOnlyWhatChanged(t *testing.T) {
	e, c, file, _ := reloadable(t, header+`export:
  keep: {type: power}
  tune: {type: power, config: {voltage: 5}}
  gone: {type: power}
`)
	keep, tune, gone := uuidOf(t, c, "keep"), uuidOf(t, c, "tune"), uuidOf(t, c, "gone")
	before := e.Session().Pids()
	rewrite(t, file, header+`export:
  keep: {type: power}
  tune: {type: power, config: {voltage: 12, on: true}}
  fresh: {type: power}
`)
	changes, err := e.Reload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tune replaced (config changed)", "fresh added", "gone removed"}
	if got := changeLines(changes); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	after := e.Session().Pids()
	if after[keep] != before[keep] {
		t.Errorf("the unchanged instance's process changed: %d -> %d", before[keep], after[keep])
	}
	if after[tune] == before[tune] {
		t.Error("the changed instance kept its process")
	}
	if uuidOf(t, c, "tune") != tune || uuidOf(t, c, "keep") != keep {
		t.Error("uuids moved in a reload")
	}
	r, err := c.StreamingDriverCall(t.Context(), &jumpstarterv1.StreamingDriverCallRequest{Uuid: tune, Method: "read"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := r.Recv(); err != nil || m.Result.GetStructValue().Fields["voltage"].GetNumberValue() != 12 {
		t.Errorf("tune reads %v, %v; want its new config's 12 V", m, err)
	}
	if _, err := call(t, c, uuidOf(t, c, "fresh"), "on"); err != nil {
		t.Errorf("the added instance: %v", err)
	}
	if _, err := call(t, c, gone, "on"); status.Code(err) != codes.NotFound {
		t.Errorf("the removed instance: %v, want NOT_FOUND", err)
	}
	waitGone(t, before[gone])

	// A config the driver rejects changes nothing: the old process serves on.
	rewrite(t, file, header+`export:
  keep: {type: power}
  tune: {type: power, config: {voltage: -1}}
  fresh: {type: power}
`)
	changes, err = e.Reload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := changeLines(changes)
	if len(got) != 1 || !strings.HasPrefix(got[0], "tune replaced (config changed): "+file+":6:32: export.tune.config.voltage: ") ||
		!strings.Contains(got[0], "voltage: must not be negative") {
		t.Errorf("changes %q, want tune's replacement to fail on voltage, at its line of %s", got, file)
	}
	if v, err := call(t, c, tune, "state"); err != nil || v != true {
		t.Errorf("tune after a failed replacement: %v, %v; want the old process serving", v, err)
	}

	// A bad config file changes nothing at all.
	rewrite(t, file, header+"export:\n  keep: {type: powr}\n")
	if _, err := e.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), `unknown driver type "powr"`) {
		t.Errorf("reload of a bad config: %v", err)
	}
	if _, err := call(t, c, tune, "state"); err != nil {
		t.Errorf("after a rejected reload: %v", err)
	}
}

// TestReloadNewBinary: replacing a plugin binary with a new build and
// reloading swaps the driver while a client loops calls, none failing.
func TestReloadNewBinary(t *testing.T) {
	e, c, _, dir := reloadable(t, header+"export:\n  power: {type: power}\n  other: {type: power}\n")
	power := uuidOf(t, c, "power")
	v2 := testbin.Build(t, "./drivers/power/cmd/jumpwire-driver-power", "-ldflags=-X main.version=0.2.0")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var (
		mu       sync.Mutex
		failures []error
		calls    int
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := call(t, c, power, "state")
				mu.Lock()
				calls++
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		})
	}
	// Replace the file as an installer does: write aside, rename over.
	b, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".new")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "jumpwire-driver-power")); err != nil {
		t.Fatal(err)
	}
	changes, err := e.Reload(t.Context())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	got := changeLines(changes)
	want := []string{"power replaced (binary changed (version 0.1.0 -> 0.2.0))", "other replaced (binary changed (version 0.1.0 -> 0.2.0))"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes %q, want %q", got, want)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed during the swap, first: %v", len(failures), calls, failures[0])
	}
	r, err := c.GetReport(t.Context(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Reports {
		if d.Uuid == power && d.Labels["jumpwire.dev/version"] != "0.2.0" {
			t.Errorf("version label after the swap: %q", d.Labels["jumpwire.dev/version"])
		}
	}
}
