package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// A plugin's line on jw run's terminal has one timestamp and no @module.
func TestPluginLineSink(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "jw", Output: &bytes.Buffer{}})
	l.RegisterSink(pluginLineSink{hclog.NewSinkAdapter(&hclog.LoggerOptions{Output: &buf})})
	l.Named("power").Named("jumpwire-driver-power").Info("power on", "@module", "power", "timestamp", "2026-12-02T05:45:27.721Z", "volts", 5)
	line := buf.String()
	if strings.Count(line, "2026-") > 1 || strings.Contains(line, "@module") || strings.Contains(line, "timestamp=") ||
		!strings.Contains(line, "jw.power.jumpwire-driver-power: power on: volts=5") {
		t.Errorf("jw run prints %q", line)
	}
}
