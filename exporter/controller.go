package exporter

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/exporter/config"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Controller mode: with `endpoint` in its config the exporter is a client of
// a Jumpstarter controller (jumpstarter.v1 ControllerService). controllerLink
// keeps that link: it registers, follows the lease state on the Status
// stream, mirrors the exporter's status with ReportStatus, and hands each
// lease the controller assigns to the lease worker (lease.go), which serves
// it through the router. Every call is retried with backoff and jitter; a
// controller that goes away never ends a lease in progress.

// Retry timing of the controller link.
const (
	retryBase = 250 * time.Millisecond
	// retryMax bounds every wait between attempts: the controller's view of
	// the exporter's status is never older than this plus one call.
	retryMax = 5 * time.Second
	// callTimeout bounds each unary call to the controller.
	callTimeout = 10 * time.Second
	// releaseWindow is how long a lease's release is retried at the lease's
	// end before the exporter carries on; it tries again whenever the
	// controller says the lease is still on (after it comes back, say).
	releaseWindow = 5 * time.Second
	// goodbyeTimeout bounds the OFFLINE report and Unregister at shutdown.
	goodbyeTimeout = 10 * time.Second
)

// ControllerStatus is what `jw status` shows of the controller link.
type ControllerStatus struct {
	// Endpoint is the controller's address from the config.
	Endpoint string
	// Registered is true while the exporter is registered and its Status
	// stream is open.
	Registered bool
	// LeaseName and ClientName name the lease being served, if any.
	LeaseName, ClientName string
	// LastError is the link's latest failure, "" once it recovered.
	LastError string
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
}

// controllerLink is the exporter's link to its controller.
type controllerLink struct {
	e        *Exporter
	cfg      *config.Config
	log      hclog.Logger
	tls      *tls.Config
	chanOpts []grpc.DialOption
	conn     *grpc.ClientConn
	ctl      jumpstarterv1.ControllerServiceClient

	mu                 sync.Mutex
	st                 ControllerStatus
	want               *jumpstarterv1.StatusResponse // the controller's latest word on the lease
	registeredOnce     bool
	releaseUnsupported bool
	ended              []string        // leases this exporter ended lately (the controller may still say leased)
	unreleased         map[string]bool // ended leases whose release did not get through yet
	outage             bool            // a failure was logged; the next success says so

	wake       chan struct{} // the lease worker has something to do
	resend     chan struct{} // report the status again
	reregister chan struct{} // Register again (after a reload)
	endReqs    chan endRequest
}

// newControllerLink checks the config's controller settings and prepares
// the connection; nothing is dialled until run.
func newControllerLink(e *Exporter) (*controllerLink, error) {
	cfg := e.cfg
	if cfg.Token == "" {
		return nil, config.Errors{{Pos: config.Pos{File: cfg.File}, Key: "token",
			Msg: "endpoint is set but token is empty: the controller needs this exporter's token"}}
	}
	tlsCfg, err := controllerTLS(cfg.TLS)
	if err != nil {
		return nil, config.Errors{{Pos: config.Pos{File: cfg.File}, Key: "tls.ca", Msg: err.Error()}}
	}
	l := &controllerLink{
		e: e, cfg: cfg, log: e.logger.Named("controller"), tls: tlsCfg,
		st:         ControllerStatus{Endpoint: cfg.Endpoint},
		unreleased: map[string]bool{},
		wake:       make(chan struct{}, 1),
		resend:     make(chan struct{}, 1),
		reregister: make(chan struct{}, 1),
		endReqs:    make(chan endRequest),
	}
	l.chanOpts = channelOptions(cfg.GRPCOptions, l.log)
	l.conn, err = dialController(cfg, tlsCfg, l.chanOpts)
	if err != nil {
		return nil, config.Errors{{Pos: config.Pos{File: cfg.File}, Key: "endpoint", Msg: err.Error()}}
	}
	l.ctl = jumpstarterv1.NewControllerServiceClient(l.conn)
	return l, nil
}

// kick wakes whoever waits on ch, without blocking.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// retryDelay is the wait before attempt n+1: exponential from retryBase,
// capped at retryMax, with jitter (half fixed, half random) so that a lab
// of exporters does not come back in step after a controller restart.
func retryDelay(n int) time.Duration {
	d := retryMax
	if n < 8 {
		d = min(retryMax, retryBase<<n)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// notReady reports an error of a controller that is starting:
// upstream's controller answers "oidc: authenticator not initialized"
// for a few seconds after it starts.
func notReady(err error) bool {
	return strings.Contains(status.Convert(err).Message(), "authenticator not initialized")
}

// transient reports whether a failed call is worth retrying as it is.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return notReady(err)
}

// fail records a failure of the link for `jw status`, and logs it when it
// starts an outage (later ones are debug: an outage is said once).
func (l *controllerLink) fail(what string, err error) {
	l.mu.Lock()
	l.st.LastError, l.st.LastErrorAt = what+": "+status.Convert(err).Message(), time.Now()
	first := !l.outage
	l.outage = true
	l.mu.Unlock()
	switch {
	case !first:
		l.log.Debug(what+" failed; retrying", "error", err)
	case notReady(err):
		l.log.Warn("the controller is not ready yet; retrying", "endpoint", l.cfg.Endpoint, "call", what)
	default:
		l.log.Warn("cannot reach the controller; retrying until it answers (leases in progress keep serving)",
			"endpoint", l.cfg.Endpoint, "call", what, "error", status.Convert(err).Message())
	}
}

// recovered clears the outage; it reports whether there was one.
func (l *controllerLink) recovered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.outage
	l.outage, l.st.LastError = false, ""
	return was
}

// answered notes a call that went through, and says so once after an
// outage.
func (l *controllerLink) answered() {
	if l.recovered() {
		l.log.Info("the controller answers again", "endpoint", l.cfg.Endpoint)
	}
}

// Status returns the link's state for `jw status`.
func (l *controllerLink) Status() ControllerStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// run keeps the link until ctx ends, then reports OFFLINE and unregisters.
func (l *controllerLink) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.report(ctx) }()
	go func() { defer wg.Done(); l.leases(ctx) }()
	for n := 0; ctx.Err() == nil; n++ {
		up, err := l.connect(ctx)
		if ctx.Err() != nil {
			break
		}
		if up {
			n = 0
		}
		l.fail("controller link", err)
		if !sleep(ctx, retryDelay(n)) {
			break
		}
	}
	wg.Wait()
	l.goodbye()
	_ = l.conn.Close()
}

// connect registers and follows the Status stream until it breaks. up says
// whether the stream delivered anything (the next attempt then starts
// from the shortest wait).
func (l *controllerLink) connect(ctx context.Context) (up bool, err error) {
	if err := l.register(ctx); err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		l.mu.Lock()
		l.st.Registered = false
		l.mu.Unlock()
	}()
	go func() { // a reload re-registers while the stream is open
		for {
			select {
			case <-l.reregister:
				if err := l.register(ctx); err != nil && ctx.Err() == nil {
					l.fail("register", err)
					kick(l.reregister) // the next connect registers anyway
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	stream, err := l.ctl.Status(ctx, &jumpstarterv1.StatusRequest{})
	if err != nil {
		return false, fmt.Errorf("status stream: %w", err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return up, fmt.Errorf("status stream: %w", err)
		}
		up = true
		l.log.Debug("lease state from the controller", "leased", msg.GetLeased(), "lease", msg.GetLeaseName(), "client", msg.GetClientName())
		l.mu.Lock()
		l.want = msg
		l.mu.Unlock()
		kick(l.wake)
	}
}

// register sends the root labels and the driver reports, as GetReport
// lists them (uuids never change across registrations), then has the
// status reported again and, the first time, asks for optional services.
func (l *controllerLink) register(ctx context.Context) error {
	rep, err := (&service{e: l.e}).GetReport(ctx, nil)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := l.ctl.Register(cctx, &jumpstarterv1.RegisterRequest{Labels: rep.Labels, Reports: rep.Reports}); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	l.mu.Lock()
	first := !l.registeredOnce
	l.registeredOnce, l.st.Registered = true, true
	l.mu.Unlock()
	if first {
		l.recovered() // "registered" says it
	} else {
		l.answered()
	}
	kick(l.resend)
	if first {
		l.log.Info("registered with the controller", "endpoint", l.cfg.Endpoint, "drivers", len(rep.Reports))
		l.serviceEndpoints(ctx)
	} else {
		l.log.Debug("registered again", "drivers", len(rep.Reports))
	}
	return nil
}

// serviceEndpoints asks for optional services. Controllers before
// GetServiceEndpoints answer UNIMPLEMENTED, which means none.
func (l *controllerLink) serviceEndpoints(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := l.ctl.GetServiceEndpoints(cctx, &jumpstarterv1.GetServiceEndpointsRequest{})
	switch {
	case status.Code(err) == codes.Unimplemented:
		l.log.Debug("the controller offers no optional services (GetServiceEndpoints unimplemented)")
	case err != nil:
		l.log.Debug("GetServiceEndpoints failed; carrying on without optional services", "error", err)
	case len(resp.TelemetryEndpoints) > 0:
		l.log.Info("the controller offers a telemetry endpoint; jumpwire does not send logs to it",
			"telemetry", resp.TelemetryEndpoints[0].Endpoint)
	}
}

// report mirrors the exporter's status to the controller: every change,
// latest first, retried until it gets through.
func (l *controllerLink) report(ctx context.Context) {
	var sent uint64 // status_version last reported; 0: none
	n := 0
	for {
		st, changed := l.e.Status()
		l.mu.Lock()
		ready := l.registeredOnce
		l.mu.Unlock()
		if ready && st.StatusVersion != sent {
			if err := l.reportStatus(ctx, st.Status, st.GetMessage(), false); err != nil {
				if ctx.Err() != nil {
					return
				}
				if status.Code(err) == codes.Unimplemented {
					l.log.Warn("the controller does not take status reports (ReportStatus unimplemented); it will not see this exporter's status")
					sent = st.StatusVersion
					continue
				}
				l.fail("report status", err)
				if !sleep(ctx, retryDelay(n)) {
					return
				}
				n++
				continue
			}
			n = 0
			sent = st.StatusVersion
			l.answered()
			l.log.Debug("status reported", "status", statusName(st.Status), "message", st.GetMessage())
		}
		select {
		case <-changed:
		case <-l.resend:
			sent = 0
		case <-ctx.Done():
			return
		}
	}
}

// reportStatus makes one ReportStatus call.
func (l *controllerLink) reportStatus(ctx context.Context, s jumpstarterv1.ExporterStatus, msg string, release bool) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := &jumpstarterv1.ReportStatusRequest{Status: s, Message: &msg}
	if release {
		req.ReleaseLease = &release
	}
	_, err := l.ctl.ReportStatus(ctx, req)
	return err
}

// releaseUnsupportedCodes are the answers of controllers that do not let an
// exporter call ReleaseLease; they take ReportStatus(release_lease) instead.
var releaseUnsupportedCodes = []codes.Code{codes.PermissionDenied, codes.InvalidArgument, codes.Unauthenticated, codes.Unimplemented}

// release asks the controller to end a lease, retrying transient failures
// for releaseWindow. It reports whether the controller took it.
func (l *controllerLink) release(ctx context.Context, lease string) bool {
	ctx, cancel := context.WithTimeout(ctx, releaseWindow)
	defer cancel()
	for n := 0; ; n++ {
		l.mu.Lock()
		compat := l.releaseUnsupported
		l.mu.Unlock()
		var err error
		if compat {
			st, _ := l.e.Status()
			s := st.Status
			if s == jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE {
				// Not AVAILABLE: the controller must not hand out a new
				// lease before the release is through.
				s = jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AFTER_LEASE_HOOK
			}
			err = l.reportStatus(ctx, s, "lease "+lease+" released by the exporter", true)
		} else {
			cctx, ccancel := context.WithTimeout(ctx, callTimeout)
			_, err = l.ctl.ReleaseLease(cctx, &jumpstarterv1.ReleaseLeaseRequest{Name: lease})
			ccancel()
			if slices.Contains(releaseUnsupportedCodes, status.Code(err)) && !notReady(err) {
				l.log.Info("the controller does not take ReleaseLease from exporters; releasing with ReportStatus", "answer", status.Code(err))
				l.mu.Lock()
				l.releaseUnsupported = true
				l.mu.Unlock()
				n--
				continue
			}
		}
		if err == nil {
			l.mu.Lock()
			delete(l.unreleased, lease)
			l.mu.Unlock()
			return true
		}
		if !transient(err) || !sleep(ctx, retryDelay(n)) {
			l.fail("release lease "+lease, err)
			l.mu.Lock()
			l.unreleased[lease] = true
			l.mu.Unlock()
			return false
		}
	}
}

// goodbye reports OFFLINE and unregisters, bounded in time; a controller
// that does not answer marks the exporter offline by itself.
func (l *controllerLink) goodbye() {
	l.mu.Lock()
	registered := l.registeredOnce
	l.mu.Unlock()
	if !registered {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), goodbyeTimeout)
	defer cancel()
	err := l.reportStatus(ctx, jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, "exporter stopped", false)
	if err == nil {
		_, err = l.ctl.Unregister(ctx, &jumpstarterv1.UnregisterRequest{Reason: "exporter shutdown"})
	}
	if err != nil {
		l.log.Warn("could not say goodbye to the controller; it marks the exporter offline by itself", "error", err)
		return
	}
	l.log.Info("unregistered from the controller")
}

// ControllerStatus returns the state of the link to the controller, and
// false when the exporter is not in controller mode.
func (e *Exporter) ControllerStatus() (ControllerStatus, bool) {
	if e.link == nil {
		return ControllerStatus{}, false
	}
	return e.link.Status(), true
}
