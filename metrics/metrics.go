// Package metrics keeps the exporter's Prometheus metrics: per driver
// instance (calls, errors by code, latency, byte streams, restarts, swaps,
// state, and its plugin process's memory and CPU), per session and lease,
// and the exporter process's own (Go runtime and process collectors).
//
// Names follow upstream Jumpstarter's exporter metrics (JEP-0013) where they
// exist, so dashboards carry over: jumpstarter_operations_total,
// jumpstarter_operation_duration_seconds, jumpstarter_operation_errors_total,
// jumpstarter_stream_bytes_total and jumpstarter_active_sessions, with the
// labels exporter, operation, result, driver_type, error_type and
// direction. What upstream has no name for is jumpwire_*. Every
// per-driver series also carries the driver's path in the tree (driver).
//
// The hot path allocates nothing: the series of a driver's methods are made
// when its session starts (or a swap brings new methods), and a call only
// loads them and adds to them atomically. A nil *Metrics, *Driver or *Op
// records nothing, so code that runs without metrics needs no checks.
package metrics

import (
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The metric names; the first five are upstream Jumpstarter's.
const (
	OperationsTotal        = "jumpstarter_operations_total"
	OperationDuration      = "jumpstarter_operation_duration_seconds"
	OperationErrorsTotal   = "jumpstarter_operation_errors_total"
	StreamBytesTotal       = "jumpstarter_stream_bytes_total"
	ActiveSessions         = "jumpstarter_active_sessions"
	DriverStreamsOpen      = "jumpwire_driver_streams_open"
	DriverRestartsTotal    = "jumpwire_driver_restarts_total"
	DriverSwapsTotal       = "jumpwire_driver_swaps_total"
	DriverState            = "jumpwire_driver_state"
	DriverPid              = "jumpwire_driver_pid"
	DriverResidentMemory   = "jumpwire_driver_resident_memory_bytes"
	DriverCPUSeconds       = "jumpwire_driver_cpu_seconds_total"
	SessionsTotal          = "jumpwire_sessions_total"
	SessionStartTime       = "jumpwire_session_start_time_seconds"
	SessionCallsInFlight   = "jumpwire_session_calls_in_flight"
	SessionStreamsOpen     = "jumpwire_session_streams_open"
	SessionRejectionsTotal = "jumpwire_session_rejections_total"
	LeaseStatus            = "jumpwire_lease_status"
	BuildInfo              = "jumpwire_build_info"
)

// Result label values, as upstream's.
const (
	Success = "success"
	Failure = "failure"
)

// Other is the operation label of calls to a method the driver does not
// export: a client cannot make up series.
const Other = "other"

// States are the values of a driver's state label (host.State's names).
var States = []string{"running", "restarting", "failed", "stopped"}

// LeaseStatuses are the values of the lease status label.
var LeaseStatuses = []string{"available", "before_lease_hook", "lease_ready", "after_lease_hook",
	"before_lease_hook_failed", "after_lease_hook_failed", "offline", "unspecified"}

// Buckets are the latency histogram's bounds in seconds: from a call on the
// plugin hop (~100µs) to a flash (minutes).
var Buckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// Metrics is the exporter's registry. Make it with New.
type Metrics struct {
	reg *prometheus.Registry

	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errs     *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	streams  *prometheus.GaugeVec
	swaps    *prometheus.CounterVec
	active   prometheus.Gauge
	sessions prometheus.Counter
	started  prometheus.Gauge
	rejected *prometheus.CounterVec
	lease    *prometheus.GaugeVec

	mu      sync.Mutex
	drivers map[string]*Driver // by path
	source  Source             // the running session, nil between sessions
}

// Source is what the running session reports at each scrape.
type Source interface {
	// Instances lists each driver instance once.
	Instances() []Instance
	// InFlight is the calls and byte streams in flight in the session.
	InFlight() (calls, streams int)
}

// Instance is a driver instance as a scrape sees it.
type Instance struct {
	Path, Type string
	State      string // one of States
	Pid        int    // 0 when it has no process
	Restarts   int    // restarts within the session
}

// New makes the registry of an exporter named exporter (the exporter label
// of every jumpstarter_* and jumpwire_* series). The Go runtime's and the
// process's collectors are registered too.
func New(exporter string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := prometheus.WrapRegistererWith(prometheus.Labels{"exporter": exporter}, reg)
	driver := []string{"driver_type", "driver"}
	op := append(driver[:2:2], "operation", "result")
	m := &Metrics{
		reg: reg,
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: OperationsTotal,
			Help: "Driver calls (DriverCall and StreamingDriverCall) completed, by method and result."}, op),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: OperationDuration,
			Help: "How long driver calls took, until the last result of a streaming call.", Buckets: Buckets}, op),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: OperationErrorsTotal,
			Help: "Failed driver calls, by gRPC status code (error_type: unavailable, invalid_argument, ...)."},
			append(driver[:2:2], "operation", "error_type")),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: StreamBytesTotal,
			Help: "Bytes carried by byte streams: rx from clients to drivers, tx from drivers to clients."},
			append(driver[:2:2], "direction")),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: DriverStreamsOpen,
			Help: "Byte streams open to the driver."}, driver),
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: DriverSwapsTotal,
			Help: "Times a reload replaced the driver's process (a new binary or config)."}, driver),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: ActiveSessions,
			Help: "Sessions running (0 or 1: one lease at a time)."}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: SessionsTotal,
			Help: "Sessions started since the exporter started."}),
		started: prometheus.NewGauge(prometheus.GaugeOpts{Name: SessionStartTime,
			Help: "When the running session started, in seconds since the epoch; 0 between sessions."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: SessionRejectionsTotal,
			Help: "Calls and byte streams refused because the session had its limit in flight (RESOURCE_EXHAUSTED)."},
			[]string{"limit"}),
		lease: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: LeaseStatus,
			Help: "The exporter's lease status as clients see it in GetStatus: 1 for the current one."}, []string{"status"}),
		drivers: map[string]*Driver{},
	}
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: BuildInfo,
		Help: "The jw module version serving, as a label.", ConstLabels: prometheus.Labels{"version": version}})
	build.Set(1)
	r.MustRegister(m.ops, m.duration, m.errs, m.bytes, m.streams, m.swaps, m.active, m.sessions,
		m.started, m.rejected, m.lease, build, &collector{m: m})
	for _, l := range []string{"calls", "streams"} {
		m.rejected.WithLabelValues(l)
	}
	m.SetLeaseStatus("unspecified")
	return m
}

// Handler serves the registry in Prometheus's text format (or OpenMetrics,
// when asked), for GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Registry is the underlying registry (to gather it in tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Driver returns the metrics of the driver instance at path, of type typ,
// making them on first use. They outlive sessions: counters go on across
// leases.
func (m *Metrics) Driver(path, typ string) *Driver {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.drivers[path]
	if !ok || d.typ != typ {
		d = &Driver{m: m, path: path, typ: typ,
			tx: m.bytes.WithLabelValues(typ, path, "tx"), rx: m.bytes.WithLabelValues(typ, path, "rx"),
			streams: m.streams.WithLabelValues(typ, path), swaps: m.swaps.WithLabelValues(typ, path)}
		d.other = d.newOp(Other)
		d.ops.Store(&map[string]*Op{})
		m.drivers[path] = d
	}
	return d
}

// SessionStarted makes src the running session.
func (m *Metrics) SessionStarted(src Source) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.source = src
	m.mu.Unlock()
	m.sessions.Inc()
	m.active.Set(1)
	m.started.Set(float64(time.Now().UnixNano()) / 1e9)
}

// SessionEnded records the end of the running session; restarts holds each
// driver's restarts within it (by path), which the restart counters keep.
func (m *Metrics) SessionEnded(restarts map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	for path, n := range restarts {
		if d, ok := m.drivers[path]; ok {
			d.restartsBefore += n
		}
	}
	m.source = nil
	m.mu.Unlock()
	m.active.Set(0)
	m.started.Set(0)
}

// Rejected counts a call or stream refused at the session's limit; limit is
// "calls" or "streams".
func (m *Metrics) Rejected(limit string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(limit).Inc()
}

// SetLeaseStatus records the lease status clients see (a LeaseStatuses
// value, as upstream's enum names it without its prefix).
func (m *Metrics) SetLeaseStatus(name string) {
	if m == nil {
		return
	}
	name = strings.ToLower(strings.TrimPrefix(name, "EXPORTER_STATUS_"))
	for _, s := range LeaseStatuses {
		v := 0.0
		if s == name {
			v = 1
		}
		m.lease.WithLabelValues(s).Set(v)
	}
}

// Driver holds the series of one driver instance (by path).
type Driver struct {
	m              *Metrics
	path, typ      string
	ops            atomic.Pointer[map[string]*Op] // replaced whole when methods change
	other          *Op
	tx, rx         prometheus.Counter
	streams        prometheus.Gauge
	swaps          prometheus.Counter
	restartsBefore int // restarts in ended sessions, under m.mu
}

// Methods makes the series of the methods the driver exports, so that calls
// to them only load and add. Calls to other methods count as Other.
func (d *Driver) Methods(names []string) {
	if d == nil {
		return
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	old := *d.ops.Load()
	ops := make(map[string]*Op, len(names))
	for _, n := range names {
		if o, ok := old[n]; ok {
			ops[n] = o
		} else {
			ops[n] = d.newOp(n)
		}
	}
	d.ops.Store(&ops)
}

func (d *Driver) newOp(name string) *Op {
	return &Op{d: d, name: name,
		ok: d.m.ops.WithLabelValues(d.typ, d.path, name, Success), fail: d.m.ops.WithLabelValues(d.typ, d.path, name, Failure),
		okDur: d.m.duration.WithLabelValues(d.typ, d.path, name, Success),
	}
}

// Op returns the series of calls to method.
func (d *Driver) Op(method string) *Op {
	if d == nil {
		return nil
	}
	if o, ok := (*d.ops.Load())[method]; ok {
		return o
	}
	return d.other
}

// StreamOpened counts a byte stream to the driver open.
func (d *Driver) StreamOpened() {
	if d != nil {
		d.streams.Inc()
	}
}

// StreamClosed counts a byte stream closed.
func (d *Driver) StreamClosed() {
	if d != nil {
		d.streams.Dec()
	}
}

// Received counts n bytes from a client to the driver.
func (d *Driver) Received(n int) {
	if d != nil && n > 0 {
		d.rx.Add(float64(n))
	}
}

// Sent counts n bytes from the driver to a client.
func (d *Driver) Sent(n int) {
	if d != nil && n > 0 {
		d.tx.Add(float64(n))
	}
}

// Swapped counts a swap of the driver's process.
func (d *Driver) Swapped() {
	if d != nil {
		d.swaps.Inc()
	}
}

// Op holds the series of one method of one driver.
type Op struct {
	d        *Driver
	name     string
	ok, fail prometheus.Counter
	okDur    prometheus.Observer
}

// Done records a call that started at start and ended with err.
func (o *Op) Done(start time.Time, err error) {
	if o == nil {
		return
	}
	took := time.Since(start).Seconds()
	if err == nil {
		o.ok.Inc()
		o.okDur.Observe(took)
		return
	}
	o.fail.Inc()
	// Failures are rare: their histogram is made on the first one, to keep
	// the scrape small.
	o.d.m.duration.WithLabelValues(o.d.typ, o.d.path, o.name, Failure).Observe(took)
	o.d.m.errs.WithLabelValues(o.d.typ, o.d.path, o.name, ErrorType(err)).Inc()
}

// ErrorType is the error_type label of err: its gRPC status code in
// snake case (deadline_exceeded, unavailable, ...).
func ErrorType(err error) string {
	code := status.Code(err)
	if int(code) >= len(codeNames) {
		return "unknown"
	}
	return codeNames[code]
}

// codeNames are the gRPC codes in snake case, by number.
var codeNames = func() []string {
	names := make([]string, 17)
	for c := range codes.Code(17) {
		var b strings.Builder
		for i, r := range c.String() {
			if r >= 'A' && r <= 'Z' {
				if i > 0 {
					b.WriteByte('_')
				}
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		}
		names[c] = b.String()
	}
	names[codes.OK] = "ok"
	return names
}()
