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
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/plugins"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
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
}

// Exporter serves the driver instances of one exporter config.
type Exporter struct {
	opts    Options
	cfg     *config.Config
	logger  hclog.Logger
	catalog *plugins.Catalog
	nodes   []*node // pre-order; nodes[0] is the root
	byUUID  map[string]*node
	logs    *logHub

	mu      sync.Mutex
	sess    *session.Session
	status  leaseState
	closed  bool
	changed chan struct{} // closed and replaced on every status change
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
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	e := &Exporter{
		opts:    o,
		cfg:     cfg,
		logger:  o.Logger,
		changed: make(chan struct{}),
		catalog: plugins.New(plugins.SearchPath(o.PluginDirs), func(ctx context.Context, bin string) (*pluginv1.DescribeResponse, error) {
			// Asking a binary what it provides starts and stops it; its
			// failures come back as errors, its chatter is not news.
			return host.Describe(ctx, bin, hclog.NewNullLogger())
		}),
	}
	e.nodes, _ = buildTree(cfg)
	e.byUUID = make(map[string]*node, len(e.nodes))
	for _, n := range e.nodes {
		e.byUUID[n.uuid] = n
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
	// Every problem at once: types that resolve are started (which is how
	// their drivers check their configs) even when others do not.
	errs := e.resolve(ctx)
	err = e.startSession(ctx)
	var more config.Errors
	switch {
	case errors.As(err, &more):
		errs = append(errs, more...)
	case err != nil:
		return nil, err
	}
	if len(errs) > 0 {
		_ = e.Close(ctx)
		slices.SortStableFunc(errs, func(a, b *config.Error) int { return a.Pos.Line - b.Pos.Line })
		return nil, errs
	}
	return e, nil
}

// Name is the exporter's name from its config.
func (e *Exporter) Name() string { return e.cfg.Metadata.Name }

// Config is the loaded configuration.
func (e *Exporter) Config() *config.Config { return e.cfg }

// resolve finds the binary and driver type of every driver instance.
func (e *Exporter) resolve(ctx context.Context) config.Errors {
	var (
		mu   sync.Mutex
		errs config.Errors
		wg   sync.WaitGroup
	)
	for _, n := range e.nodes {
		if !n.isDriver() {
			continue
		}
		wg.Go(func() {
			err := e.resolveNode(ctx, n)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

func (e *Exporter) resolveNode(ctx context.Context, n *node) *config.Error {
	inst := n.inst
	if inst.Plugin != "" {
		entry, err := e.catalog.Binary(ctx, inst.Plugin)
		if err != nil {
			return inst.KeyError("plugin", err.Error())
		}
		if n.dtype = entry.Type(inst.Type); n.dtype == nil {
			return inst.KeyError("type", fmt.Sprintf("%s provides no driver type %q; it provides: %s",
				entry.Binary, inst.Type, typeNames(entry)))
		}
		n.entry = entry
		return nil
	}
	entry, dt, err := e.catalog.Lookup(ctx, inst.Type)
	if err != nil {
		return inst.KeyError("type", err.Error())
	}
	n.entry, n.dtype = entry, dt
	return nil
}

func typeNames(e *plugins.Entry) string {
	var names []string
	for _, t := range e.Info.GetTypes() {
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return "nothing"
	}
	return fmt.Sprint(names)
}

// specs lists what each driver instance runs, and the aliases (refs).
func (e *Exporter) specs() (map[string]host.Spec, map[string]string, error) {
	specs := map[string]host.Spec{}
	aliases := map[string]string{}
	var errs config.Errors
	for _, n := range e.nodes {
		switch {
		case n.target != nil:
			aliases[n.uuid] = n.target.uuid
		case n.isDriver() && n.entry != nil: // unresolved types are reported by resolve
			cfg, err := structpb.NewStruct(n.inst.Config)
			if err != nil {
				errs = append(errs, n.inst.KeyError("config", err.Error()))
				continue
			}
			specs[n.uuid] = host.Spec{
				Binary: n.entry.Binary, Type: n.inst.Type,
				Name: n.inst.Name, Path: n.inst.Path, Config: cfg,
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return specs, aliases, nil
}

// startSession starts a fresh session. Problems a driver finds with its
// config come back as config errors at the offending lines.
func (e *Exporter) startSession(ctx context.Context) error {
	specs, aliases, err := e.specs()
	if err != nil {
		return err
	}
	s, err := session.Start(ctx, specs, aliases, session.Options{
		Launch: host.LaunchOptions{StartTimeout: e.opts.StartTimeout},
		Policy: host.Policy{
			MaxCrashes: e.cfg.FailureDetection.MaxRapidFailures,
			Window:     e.cfg.FailureDetection.RapidFailureWindow,
		},
		Logger: e.logger,
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
	e.setStatusLocked(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY, "")
	e.mu.Unlock()
	return nil
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
		errs = append(errs, n.inst.KeyError("type", status.Convert(err).Message()))
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

// Session returns the current session, or nil between sessions.
func (e *Exporter) Session() *session.Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sess
}

// EndSession ends the current session and, unless the exporter is closing,
// starts a fresh one (local and direct mode serve one session after another).
func (e *Exporter) EndSession(ctx context.Context) (bool, string) {
	e.mu.Lock()
	s := e.sess
	e.sess = nil
	if s != nil {
		e.setStatusLocked(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, "session ended")
	}
	closed := e.closed
	e.mu.Unlock()
	if s == nil {
		return false, "there is no session to end"
	}
	if err := s.End(ctx, nil); err != nil {
		e.logger.Warn("ending session", "error", err)
	}
	if closed {
		return true, "session ended"
	}
	if err := e.startSession(ctx); err != nil {
		e.logger.Error("starting the next session", "error", err)
		return true, "session ended; the next one failed to start: " + err.Error()
	}
	return true, "session ended; a fresh session is ready"
}

// Close ends the session and stops every plugin process.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	s := e.sess
	e.sess = nil
	e.setStatusLocked(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, "exporter stopped")
	e.mu.Unlock()
	if il, ok := e.opts.Logger.(hclog.InterceptLogger); ok {
		defer il.DeregisterSink(e.logs)
	}
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
	close(e.changed)
	e.changed = make(chan struct{})
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
