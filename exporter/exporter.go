// Package exporter is the jumpwire daemon: it loads an exporter config
// strictly, resolves every driver type through the plugin catalog, builds the
// driver tree with stable uuids, runs driver instances in sessions, and
// serves the jumpstarter.v1 API to clients.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/internal/grpcerr"
	"github.com/jumpwire-dev/jumpwire/metrics"
	"github.com/jumpwire-dev/jumpwire/plugins"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"github.com/jumpwire-dev/jumpwire/session"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Options configures an exporter.
type Options struct {
	// ConfigFile is the exporter configuration file.
	ConfigFile string
	// PluginDirs are searched for plugin binaries before $JUMPWIRE_PLUGIN_PATH
	// and the plugins directory next to the executable.
	PluginDirs []string
	// Logger receives the exporter's and the plugins' logs. When it is an
	// hclog.InterceptLogger, LogStream serves what it receives. Default: none
	// (LogStream still serves them).
	Logger hclog.Logger
	// StartTimeout bounds each plugin's launch and handshake. Default 10s.
	StartTimeout time.Duration
	// RestartPolicy, when set, says how crashed drivers are restarted
	// (backoff, retry after a crash loop, how long calls wait). Its zero
	// MaxCrashes and Window come from the config's failureDetection.
	// Default: the config's failureDetection and host's defaults.
	RestartPolicy *host.Policy
	// SwapDrain bounds how long calls and streams on a replaced driver's old
	// process may go on after a reload swaps it. Default 5s.
	SwapDrain time.Duration
	// MaxCalls and MaxStreams bound the calls and byte streams in flight in
	// a session (RESOURCE_EXHAUSTED past them). Defaults DefaultMaxCalls and
	// DefaultMaxStreams.
	MaxCalls, MaxStreams int
	// MaxCallsPerClient and MaxStreamsPerClient bound what one client (an
	// IP address over TCP, a connection on a unix socket) has in flight, so
	// that one client cannot take all of a session's. Defaults: three
	// quarters of MaxCalls and MaxStreams.
	MaxCallsPerClient, MaxStreamsPerClient int
	// StopTimeout bounds each driver's Close at a session's end, after which
	// its process group is killed. Default 5s.
	StopTimeout time.Duration
	// Metrics, when true, keeps Prometheus metrics of the drivers, sessions
	// and the exporter process, served by Metrics().Handler().
	Metrics bool
	// Python is the interpreter or virtual environment whose driver classes
	// Python types name (jw run --python). Default: the config's `python:`,
	// else python3 on PATH.
	Python string
}

// Default limits of a session's calls and byte streams in flight.
const (
	DefaultMaxCalls   = session.DefaultMaxCalls
	DefaultMaxStreams = session.DefaultMaxStreams
)

// Exporter serves the driver instances of one exporter config.
type Exporter struct {
	// localFiles holds the files local clients handed over (localfile.go).
	localFiles localFiles

	opts    Options
	cfg     *config.Config
	logger  hclog.Logger
	catalog *plugins.Catalog
	nodes   []*node // pre-order; nodes[0] is the root
	byUUID  map[string]*node
	logs    *logHub
	clients *clientLimits
	metrics *metrics.Metrics // nil without Options.Metrics

	mu      sync.Mutex
	sess    *session.Session
	status  leaseState
	closed  bool
	changed chan struct{} // closed and replaced on every status change

	lifeMu sync.Mutex // one session change or reload at a time

	madeNodes madeCache     // the children drivers made, per ConfigureResponse
	zygotes   *host.Zygotes // fork Python instances, one zygote per interpreter

	pendingLease bool       // the session's before-lease hook has yet to run
	fatal        chan error // a hook with onFailure: exit stops the exporter

	// life ends at Close; what runs in the background (a session's
	// before-lease hook) runs under it, counted in bg, which Close waits for.
	life    context.Context
	endLife context.CancelFunc
	bg      sync.WaitGroup

	link        *controllerLink // controller mode (the config has an endpoint); nil otherwise
	linkRunning atomic.Bool
}

// leaseState is the lease state clients see through GetStatus.
type leaseState struct {
	cur, prev jumpstarterv1.ExporterStatus
	version   uint64
	message   string
}

// New loads the config, resolves every driver type, and starts the first
// session, which is how every driver checks its config. It returns every
// problem at once, one line each with file:line (a config.Errors), or a
// ready exporter that must be Closed.
func New(ctx context.Context, o Options) (*Exporter, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: io.Discard})
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = session.DefaultMaxCalls
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = session.DefaultMaxStreams
	}
	if o.MaxCallsPerClient <= 0 {
		o.MaxCallsPerClient = share(o.MaxCalls)
	}
	if o.MaxStreamsPerClient <= 0 {
		o.MaxStreamsPerClient = share(o.MaxStreams)
	}
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	life, endLife := context.WithCancel(context.Background())
	e := &Exporter{
		life:    life,
		endLife: endLife,
		opts:    o,
		cfg:     cfg,
		logger:  o.Logger,
		changed: make(chan struct{}),
		fatal:   make(chan error, 1),
		catalog: newCatalog(o.PluginDirs, plugins.WithPython(pythonOf(o, cfg))),
	}
	if os.Getenv(NoZygoteEnv) != "1" {
		e.zygotes = host.NewZygotes(plugins.PythonEnv())
	}
	e.clients = newClientLimits([2]int{o.MaxCallsPerClient, o.MaxStreamsPerClient}, [2]int{o.MaxCalls, o.MaxStreams})
	e.nodes, e.byUUID = buildTree(cfg)
	if o.Metrics {
		e.metrics = metrics.New(cfg.Metadata.Name)
	}
	e.logs = newLogHub(o.Logger.Name(), e.nodes)
	if il, ok := o.Logger.(hclog.InterceptLogger); ok {
		il.RegisterSink(e.logs)
		defer func() {
			if e.sess == nil { // New failed
				il.DeregisterSink(e.logs)
			}
		}()
	}
	// The zygote's imports take as long as upstream's exporter takes to
	// start: an instance that names Python starts them now, while the Go
	// plugins are hashed and the types resolved.
	e.prestartNamedPython()
	// Every problem at once: types that resolve are started (which is how
	// their drivers check their configs) even when others do not.
	errs := e.resolve(ctx, e.nodes)
	e.prestartZygotes()
	err = e.startSession(ctx)
	var more config.Errors
	switch {
	case errors.As(err, &more):
		errs = append(errs, more...)
	case err != nil:
		e.releaseBinaries()
		return nil, err
	}
	if len(errs) > 0 {
		_ = e.Close(ctx)
		slices.SortStableFunc(errs, func(a, b *config.Error) int { return a.Pos.Line - b.Pos.Line })
		return nil, errs
	}
	if e.cfg.Endpoint != "" {
		l, err := newControllerLink(e)
		if err != nil {
			_ = e.Close(ctx)
			return nil, err
		}
		e.link = l
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, "waiting for the controller to assign a lease")
	} else if e.cfg.Hooks.BeforeLease == nil {
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY, "")
	} else {
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, "the before-lease hook runs when the exporter serves")
		e.pendingLease = true
	}
	return e, nil
}

// Name is the exporter's name from its config.
func (e *Exporter) Name() string { return e.cfg.Metadata.Name }

// Config is the configuration being served (the latest reloaded one).
func (e *Exporter) Config() *config.Config {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg
}

// specsOf lists what each driver instance of the tree nodes runs, by uuid.
// Refs run nothing: calls to one go to the uuid of the instance it stands
// for (service.driverNode).
func specsOf(nodes []*node) (map[string]host.Spec, error) {
	specs := map[string]host.Spec{}
	var errs config.Errors
	byPath := make(map[string]*node, len(nodes))
	for _, n := range nodes {
		byPath[n.path()] = n
	}
	for _, n := range nodes {
		switch {
		case n.target != nil:
		case n.isDriver() && n.entry != nil: // unresolved types are reported by resolve
			cfg, err := structpb.NewStruct(n.inst.Config)
			if err != nil {
				errs = append(errs, n.inst.KeyError("config", err.Error()))
				continue
			}
			spec := host.Spec{
				Binary: n.entry.Binary, Type: n.inst.Type,
				Name: n.inst.Name, Path: n.inst.Path, Config: cfg,
			}
			if len(n.inst.Children) > 0 {
				children, err := childrenOf(n, byPath)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				spec.Children = children
			}
			if py := n.entry.Python; py != nil {
				spec.Type = py.Type
				spec.Args = []string{"-m", plugins.PyhostModule, "serve", py.Type}
				spec.Python, spec.PythonCode = py.Type, n.entry.SHA256
				spec.Env = plugins.PythonEnv()
			}
			specs[n.uuid] = spec
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return specs, nil
}

// startSession starts a fresh session. Problems a driver finds with its
// config come back as config errors at the offending lines.
func (e *Exporter) startSession(ctx context.Context) error {
	specs, err := specsOf(e.nodes)
	if err != nil {
		return err
	}
	s, err := session.Start(ctx, specs, session.Options{
		Launch:      host.LaunchOptions{StartTimeout: e.opts.StartTimeout, Zygotes: e.zygotes, Children: childRouter{e}},
		Policy:      e.restartPolicy(),
		Logger:      e.logger,
		StopTimeout: e.opts.StopTimeout,
		MaxCalls:    e.opts.MaxCalls,
		MaxStreams:  e.opts.MaxStreams,
		Metrics:     e.metrics,
	})
	if err != nil {
		var se *session.StartError
		if errors.As(err, &se) {
			errs := e.startErrors(se)
			return append(errs, e.checkMethods(func(id string) *pluginv1.ConfigureResponse { return se.Configured[id] })...)
		}
		return err
	}
	if errs := e.checkMethods(s.Configured); len(errs) > 0 {
		_ = s.End(ctx, nil)
		return errs
	}
	e.mu.Lock()
	e.sess = s
	e.mu.Unlock()
	return nil
}

// prestartZygotes starts the zygote of each interpreter that Python
// instances use, so that it imports while the first session gets ready.
func (e *Exporter) prestartZygotes() {
	seen := map[string]bool{}
	for _, n := range e.nodes {
		if n.entry != nil && n.entry.Python != nil && !seen[n.entry.Binary] {
			seen[n.entry.Binary] = true
			e.zygotes.Prestart(n.entry.Binary)
		}
	}
}

// prestartNamedPython starts the zygote of each interpreter that an
// instance's `plugin: python[:INTERPRETER]` names, before its type resolves
// (an instance whose type is not importable fails to resolve, and the zygote
// then goes unused until the exporter stops).
func (e *Exporter) prestartNamedPython() {
	if e.zygotes == nil {
		return
	}
	seen := map[string]bool{}
	for _, n := range e.nodes {
		if !n.isDriver() {
			continue
		}
		py, ok := strings.CutPrefix(n.inst.Plugin, plugins.PythonPlugin)
		if !ok || py != "" && py[0] != ':' {
			continue
		}
		interp, err := e.catalog.InterpreterOf(strings.TrimPrefix(py, ":"))
		if err == nil && !seen[interp] {
			seen[interp] = true
			e.zygotes.Prestart(interp)
		}
	}
}

// NoZygoteEnv set to 1 makes the exporter start each Python instance as an
// interpreter of its own instead of forking it from a zygote: slower and
// heavier, for comparison and for drivers that cannot bear a fork.
const NoZygoteEnv = "JUMPWIRE_PYTHON_NO_ZYGOTE"

// pythonOf is the Python interpreter or environment the exporter uses: the
// flag, else the config's `python:` (relative to the config file), else "".
func pythonOf(o Options, cfg *config.Config) string {
	if o.Python != "" {
		return o.Python
	}
	py := cfg.Python
	if strings.ContainsRune(py, '/') && !filepath.IsAbs(py) && cfg.File != "" {
		py = filepath.Join(filepath.Dir(cfg.File), py)
	}
	return py
}

// restartPolicy is Options.RestartPolicy completed by the config's
// failureDetection.
func (e *Exporter) restartPolicy() host.Policy {
	var p host.Policy
	if e.opts.RestartPolicy != nil {
		p = *e.opts.RestartPolicy
	}
	if p.MaxCrashes == 0 {
		p.MaxCrashes = e.cfg.FailureDetection.MaxRapidFailures
	}
	if p.Window == 0 {
		p.Window = e.cfg.FailureDetection.RapidFailureWindow
	}
	return p
}

// startErrors places each instance's failure at its lines in the config.
func (e *Exporter) startErrors(se *session.StartError) config.Errors {
	var errs config.Errors
	for _, n := range e.nodes {
		err, ok := se.Failures[n.uuid]
		if !ok {
			continue
		}
		var ce *host.ConfigError
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				errs = append(errs, n.inst.ConfigError(p.Key, p.Message))
			}
			continue
		}
		errs = append(errs, n.inst.KeyError("type", grpcerr.Message(err)))
	}
	return errs
}

// checkMethods rejects methods_description entries naming no method.
func (e *Exporter) checkMethods(configured func(uuid string) *pluginv1.ConfigureResponse) config.Errors {
	var errs config.Errors
	for _, n := range e.nodes {
		if !n.isDriver() || n.inst.MethodsDescription == nil {
			continue
		}
		conf := configured(n.uuid)
		if conf == nil {
			continue // it did not start; that is reported already
		}
		var names []string
		for _, m := range conf.GetMethods() {
			names = append(names, m.Name)
		}
		for _, m := range sortedKeys(n.inst.MethodsDescription) {
			if !slices.Contains(names, m) {
				errs = append(errs, n.inst.KeyError("methods_description",
					fmt.Sprintf("%s has no method %q; its methods: %v", n.dtype.Name, m, names)))
			}
		}
	}
	return errs
}

// tree returns the driver tree: the nodes in pre-order and by uuid.
func (e *Exporter) tree() ([]*node, map[string]*node) {
	e.mu.Lock()
	nodes, byUUID := e.nodes, e.byUUID
	e.mu.Unlock()
	return e.withMade(nodes, byUUID)
}

// Session returns the current session, or nil between sessions.
func (e *Exporter) Session() *session.Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sess
}

// EndSession ends the current session: the after-lease hook runs (the
// drivers still serve it), then calls and streams in flight are cancelled
// and the processes stopped. Unless the exporter is closing, a fresh session
// starts (local and direct mode serve one session after another); its
// before-lease hook runs in the background.
//
// In controller mode the session is the lease: EndSession ends the lease
// (after-lease hook, release to the controller) and no session starts
// until the next lease.
func (e *Exporter) EndSession(ctx context.Context) (bool, string) {
	if e.link != nil {
		return e.link.endSession(ctx)
	}
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	e.mu.Lock()
	s, closed := e.sess, e.closed
	e.mu.Unlock()
	if s == nil {
		st, _ := e.Status()
		return false, "there is no session to end (exporter status " + statusName(st.Status) + ")"
	}
	msg := "session ended"
	if h := e.Config().Hooks.AfterLease; h != nil {
		if err := e.hook(ctx, afterLease, h); err != nil {
			msg += "; " + err.Error()
		}
	}
	e.mu.Lock()
	e.sess = nil
	if e.status.cur != afterLease.failed {
		e.setStatusLocked(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, "session ended")
	}
	e.mu.Unlock()
	if err := s.End(ctx, nil); err != nil {
		e.logger.Warn("ending session", "error", err)
	}
	if closed || e.exiting() {
		return true, msg
	}
	if err := e.startSession(ctx); err != nil {
		e.logger.Error("starting the next session", "error", err)
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, "the next session failed to start: "+err.Error())
		return true, msg + "; the next one failed to start: " + err.Error()
	}
	e.background(e.beginLease)
	return true, msg + "; a fresh session is starting"
}

// beginLease makes the current session ready: it runs the before-lease hook
// if there is one, and handles its failure as the hook's onFailure says.
func (e *Exporter) beginLease(ctx context.Context) {
	h := e.Config().Hooks.BeforeLease
	if h == nil {
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY, "")
		return
	}
	msg := ""
	if err := e.hook(ctx, beforeLease, h); err != nil {
		msg = err.Error()
		switch h.OnFailure {
		case config.OnFailureEndLease:
			e.mu.Lock()
			s := e.sess
			e.sess = nil
			e.mu.Unlock()
			if s != nil {
				_ = s.End(ctx, status.Error(codes.Unavailable, err.Error()))
			}
			return
		case config.OnFailureExit:
			return
		}
	}
	e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY, msg)
}

// hook runs a lease hook with the statuses around it. A failure with
// onFailure warn is only logged (the caller's next status carries it as its
// message); otherwise it leaves the failed status with the reason and, for
// onFailure: exit, stops the exporter.
func (e *Exporter) hook(ctx context.Context, kind hookKind, h *config.Hook) error {
	e.setStatus(kind.running, "")
	err := e.runHook(ctx, kind, h)
	if err == nil {
		return nil
	}
	e.logger.Error("lease hook failed", "hook", kind.name, "error", err, "on_failure", h.OnFailure)
	err = fmt.Errorf("%w (onFailure: %s)", err, h.OnFailure)
	if h.OnFailure == config.OnFailureWarn {
		return err
	}
	e.setStatus(kind.failed, err.Error())
	if h.OnFailure == config.OnFailureExit {
		select {
		case e.fatal <- fmt.Errorf("%w; the config says onFailure: exit", errors.Unwrap(err)):
		default:
		}
	}
	return err
}

// exiting reports whether a hook asked the exporter to exit.
func (e *Exporter) exiting() bool { return len(e.fatal) > 0 }

// WaitReady waits until the session's before-lease hook is over: the
// exporter is LEASE_READY, or a hook failed, or ctx ends.
func (e *Exporter) WaitReady(ctx context.Context) (*jumpstarterv1.GetStatusResponse, error) {
	for {
		st, changed := e.Status()
		switch st.Status {
		case beforeLease.running:
		case jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE:
			if !e.leasePending() {
				return st, nil
			}
		default:
			return st, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

func (e *Exporter) leasePending() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pendingLease
}

// startLease runs the first session's before-lease hook, once, when the
// exporter starts serving.
func (e *Exporter) startLease(ctx context.Context) {
	e.mu.Lock()
	pending := e.pendingLease
	e.pendingLease = false
	if pending { // before anyone can see AVAILABLE without a pending lease
		e.setStatusLocked(beforeLease.running, "")
	}
	e.mu.Unlock()
	if pending {
		e.background(e.beginLease)
	}
}

// background runs fn in a goroutine that Close cancels and waits for;
// after Close it does not run at all.
func (e *Exporter) background(fn func(ctx context.Context)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.bg.Go(func() { fn(e.life) }) // under e.mu, before Close waits
}

// setStatus changes the lease status, unless the exporter is closed: what
// finishes after Close (a hook) cannot bring it back from OFFLINE.
func (e *Exporter) setStatus(s jumpstarterv1.ExporterStatus, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.setStatusLocked(s, msg)
}

// Metrics is the exporter's Prometheus metrics, nil without
// Options.Metrics.
func (e *Exporter) Metrics() *metrics.Metrics { return e.metrics }

// Close ends the session and stops every plugin process, once a lease hook
// that runs is stopped too.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	e.setStatusLocked(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, "exporter stopped")
	e.closed = true
	s := e.sess
	e.sess = nil
	e.mu.Unlock()
	e.endLife()
	e.bg.Wait()
	if il, ok := e.opts.Logger.(hclog.InterceptLogger); ok {
		defer il.DeregisterSink(e.logs)
	}
	defer e.releaseBinaries() // once no plugin runs from the private copies
	if s == nil {
		return nil
	}
	return s.End(ctx, status.Error(codes.Unavailable, "the exporter is shutting down"))
}

func (e *Exporter) setStatusLocked(s jumpstarterv1.ExporterStatus, msg string) {
	if e.status.cur == s && e.status.message == msg {
		return
	}
	e.status.prev, e.status.cur, e.status.message = e.status.cur, s, msg
	e.status.version++
	// Every change reaches LogStream, so that jw status -w sees each version.
	e.logger.Info("status changed", LogStatus, statusName(s), LogStatusVersion, e.status.version,
		LogPreviousStatus, statusName(e.status.prev), "message", msg)
	e.metrics.SetLeaseStatus(statusName(s))
	close(e.changed)
	e.changed = make(chan struct{})
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
