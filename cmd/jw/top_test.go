package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/metrics"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeSession is a session as metrics scrapes see it.
type fakeSession struct{ instances []metrics.Instance }

func (f fakeSession) Instances() []metrics.Instance { return f.instances }
func (f fakeSession) InFlight() (int, int)          { return 2, 1 }

func gather(t *testing.T, m *metrics.Metrics, at time.Time) *topSnapshot {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	s := foldTop(byName)
	s.at = at
	return s
}

// TestTopTable: jw top shows each driver of the session with its rates over
// the interval, its failures, latency quantiles from the histogram and its
// process's figures.
func TestTopTable(t *testing.T) {
	m := metrics.New("lab")
	m.SessionStarted(fakeSession{[]metrics.Instance{
		{Path: "dut.power", Type: "power", State: "running", Pid: 4242, Restarts: 1},
		{Path: "dut.serial", Type: "serial", State: "restarting"},
	}})
	power := m.Driver("dut.power", "power")
	power.Methods([]string{"on"})
	m.Driver("dut.serial", "serial")
	t0 := time.Now()
	before := gather(t, m, t0)
	for range 9 {
		power.Op("on").Done(time.Now(), nil) // a few µs: the first bucket
	}
	power.Op("on").Done(time.Now().Add(-3*time.Second), status.Error(codes.Unavailable, "gone"))
	power.Sent(2048)
	after := gather(t, m, t0.Add(2*time.Second))

	var b bytes.Buffer
	renderTop(&b, before, after)
	out := b.String()
	t.Log("\n" + out)
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			rows[f[0]] = f
		}
	}
	header := rows["DRIVER"]
	col := func(row []string, name string) string {
		for i, h := range header {
			if h == name && i < len(row) {
				return row[i]
			}
		}
		t.Fatalf("no column %s in %q", name, header)
		return ""
	}
	power1, serial := rows["dut.power"], rows["dut.serial"]
	if power1 == nil || serial == nil {
		t.Fatalf("a driver is missing:\n%s", out)
	}
	for _, tc := range []struct{ col, want string }{
		{"STATE", "running"}, {"PID", "4242"}, {"CALLS/S", "5.0"}, {"ERRORS", "1"},
		{"P50", "≤100µs"}, {"P99", "≤5s"}, {"TX/S", "1.0KiB"}, {"RESTARTS", "1"},
	} {
		if got := col(power1, tc.col); got != tc.want {
			t.Errorf("dut.power %s = %q, want %q", tc.col, got, tc.want)
		}
	}
	if got := col(serial, "STATE"); got != "restarting" {
		t.Errorf("dut.serial STATE = %q, want restarting", got)
	}
	if got := col(serial, "PID"); got != "-" {
		t.Errorf("dut.serial PID = %q, want - (no process)", got)
	}
	if !strings.Contains(out, "exporter lab ") || !strings.Contains(out, "calls in flight 2") {
		t.Errorf("the header does not name the exporter and its calls in flight:\n%s", out)
	}
}

// TestTopOnce: without a terminal, jw top prints one table from the
// endpoint and returns.
func TestTopOnce(t *testing.T) {
	m := metrics.New("lab")
	m.SessionStarted(fakeSession{[]metrics.Instance{{Path: "power", Type: "power", State: "running", Pid: 1}}})
	m.Driver("power", "power")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	var b bytes.Buffer
	if err := top(t.Context(), &b, metricsURL(strings.TrimPrefix(srv.URL, "http://")), 10*time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "DRIVER"); n != 1 {
		t.Errorf("%d tables, want 1:\n%s", n, b.String())
	}
	if !strings.Contains(b.String(), "running") {
		t.Errorf("no running driver:\n%s", b.String())
	}
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9464":             "http://127.0.0.1:9464/metrics",
		"http://lab:9464":            "http://lab:9464/metrics",
		"https://lab/custom/metrics": "https://lab/custom/metrics",
	} {
		if got := metricsURL(in); got != want {
			t.Errorf("metricsURL(%q) = %q, want %q", in, got, want)
		}
	}
}
