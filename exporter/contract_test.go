package exporter_test

import (
	"testing"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/exporter"
)

// TestClientSpeaksTheLogContract: the client library (which jw's client side
// uses on every system, without the exporter package) names the log's
// header and status fields as the exporter writes them.
func TestClientSpeaksTheLogContract(t *testing.T) {
	for _, p := range [][2]string{
		{exporter.BacklogHeader, client.BacklogHeader},
		{exporter.LogStatus, client.LogStatus},
		{exporter.LogStatusVersion, client.LogStatusVersion},
		{exporter.LogPreviousStatus, client.LogPreviousStatus},
	} {
		if p[0] != p[1] {
			t.Errorf("the exporter writes %q where the client reads %q", p[0], p[1])
		}
	}
}
