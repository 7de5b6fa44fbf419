package exporter_test

import (
	"testing"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestLogStream: a driver's own log lines reach LogStream subscribers with
// its uuid, type, severity and source DRIVER; every subscriber gets them.
func TestLogStream(t *testing.T) {
	_, c := serve(t, demo)
	dut := uuidOf(t, c, "dut.power")
	var streams []jumpstarterv1.ExporterService_LogStreamClient
	for range 2 {
		s, err := c.LogStream(t.Context(), &emptypb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Header(); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	if _, err := call(t, c, dut, "on"); err != nil {
		t.Fatal(err)
	}
	for i, s := range streams {
		for {
			e, err := s.Recv()
			if err != nil {
				t.Fatalf("subscriber %d: %v", i, err)
			}
			if e.Message != "power on" {
				continue
			}
			if e.Uuid != dut || e.GetDriverType() != "power" || e.Severity != "INFO" ||
				e.GetSource() != jumpstarterv1.LogSource_LOG_SOURCE_DRIVER || e.Timestamp == nil ||
				e.StructuredFields["driver"] != "dut.power" {
				t.Errorf("subscriber %d got %v", i, e)
			}
			break
		}
	}
}
