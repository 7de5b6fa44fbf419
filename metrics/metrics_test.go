package metrics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestHotPathAllocatesNothing: counting a call and the bytes of a stream
// allocates nothing, so metrics do not slow the relay.
func TestHotPathAllocatesNothing(t *testing.T) {
	d := New("lab").Driver("dut.power", "power")
	d.Methods([]string{"on", "off"})
	allocs := testing.AllocsPerRun(1000, func() {
		d.Op("on").Done(time.Now(), nil)
		d.Received(512)
		d.Sent(512)
	})
	if allocs != 0 {
		t.Errorf("a call and a frame each way allocate %v times, want 0", allocs)
	}
}

// TestOperations: calls count by method and result, errors by code, and a
// method the driver does not export counts as "other".
func TestOperations(t *testing.T) {
	m := New("lab")
	d := m.Driver("dut.power", "power")
	d.Methods([]string{"on"})
	now := time.Now()
	d.Op("on").Done(now, nil)
	d.Op("on").Done(now, nil)
	d.Op("on").Done(now, status.Error(codes.Unavailable, "driver died"))
	d.Op("made_up").Done(now, status.Error(codes.NotFound, "no such method"))

	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`jumpstarter_operations_total{driver="dut.power",driver_type="power",exporter="lab",operation="on",result="success"}`, 2},
		{`jumpstarter_operations_total{driver="dut.power",driver_type="power",exporter="lab",operation="on",result="failure"}`, 1},
		{`jumpstarter_operations_total{driver="dut.power",driver_type="power",exporter="lab",operation="other",result="failure"}`, 1},
		{`jumpstarter_operation_errors_total{driver="dut.power",driver_type="power",error_type="unavailable",exporter="lab",operation="on"}`, 1},
		{`jumpstarter_operation_errors_total{driver="dut.power",driver_type="power",error_type="not_found",exporter="lab",operation="other"}`, 1},
		{`jumpstarter_operation_duration_seconds_count{driver="dut.power",driver_type="power",exporter="lab",operation="on",result="success"}`, 2},
	} {
		if got := value(t, m, tc.series); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.series, got, tc.want)
		}
	}
	if n := count(t, m, OperationsTotal); n != 4 {
		t.Errorf("%d operation series, want 4 (on, other; success, failure): a made-up method must not make its own", n)
	}
}

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.DeadlineExceeded, "slow"), "deadline_exceeded"},
		{status.Error(codes.InvalidArgument, "bad"), "invalid_argument"},
		{fmt.Errorf("session: %w", status.Error(codes.ResourceExhausted, "full")), "resource_exhausted"},
		{errors.New("plain"), "unknown"},
	} {
		if got := ErrorType(tc.err); got != tc.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// value is the value of one series, named as the text format names it.
func value(t *testing.T, m *Metrics, series string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name, v := f.GetName(), 0.0
			switch {
			case s.Counter != nil:
				v = s.GetCounter().GetValue()
			case s.Histogram != nil:
				name, v = name+"_count", float64(s.GetHistogram().GetSampleCount())
			}
			if name+"{"+strings.Join(labels, ",")+"}" == series {
				return v
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

// count is the number of series of the family name.
func count(t *testing.T, m *Metrics, name string) int {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

// BenchmarkCall is what metrics add to each driver call: finding the
// method's series, and counting and timing the call.
func BenchmarkCall(b *testing.B) {
	d := New("lab").Driver("dut.power", "power")
	d.Methods([]string{"on", "off", "state", "read"})
	b.ReportAllocs()
	for b.Loop() {
		d.Op("on").Done(time.Now(), nil)
	}
}
