package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestMetricsEndpoint: `jw run --metrics-listen` serves Prometheus metrics,
// and `jw power on` moves the DriverCall counter of power's "on" method.
func TestMetricsEndpoint(t *testing.T) {
	jw := jwBinary(t)
	sock := filepath.Join(t.TempDir(), "e.sock")
	cmd := exec.Command(jw, "run", "-c", writeE2EConfig(t), "--listen", "unix://"+sock, "--metrics-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "JUMPWIRE_PLUGIN_PATH=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := ""
	lines := bufio.NewScanner(stdout)
	for url == "" && lines.Scan() {
		url, _ = strings.CutPrefix(lines.Text(), "metrics: ")
	}
	if url == "" {
		t.Fatalf("jw run did not say where it serves metrics: %v", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	waitFor(t, "the exporter's socket", func() bool { _, err := os.Stat(sock); return err == nil })

	on := map[string]string{"exporter": "e2e", "driver": "power", "driver_type": "power", "operation": "on", "result": "success"}
	before := scrape(t, url)
	if got := sample(before, "jumpstarter_operations_total", on); got != 0 {
		t.Fatalf("before any call, power.on succeeded %v times", got)
	}
	running := map[string]string{"driver": "dut.power", "state": "running"}
	if got := sample(before, "jumpwire_driver_state", running); got != 1 {
		t.Errorf("dut.power's running state = %v, want 1", got)
	}
	if got := sample(before, "jumpstarter_active_sessions", nil); got != 1 {
		t.Errorf("active sessions = %v, want 1", got)
	}
	if out, err := exec.Command(jw, "--host", "unix://"+sock, "power", "on").CombinedOutput(); err != nil {
		t.Fatalf("jw power on: %v\n%s", err, out)
	}
	after := scrape(t, url)
	if got := sample(after, "jumpstarter_operations_total", on); got != 1 {
		t.Errorf("after jw power on, power.on succeeded %v times, want 1", got)
	}
	if got := sample(after, "jumpwire_driver_resident_memory_bytes", map[string]string{"driver": "power"}); got <= 0 {
		t.Errorf("power's plugin process uses %v bytes of memory", got)
	}
	if got := sample(after, "process_resident_memory_bytes", nil); got <= 0 {
		t.Errorf("the exporter uses %v bytes of memory", got)
	}
}

// scrape fetches url and parses Prometheus's text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return fams
}

// sample is the value of the first counter or gauge series of name whose
// labels include want, or -1 when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
