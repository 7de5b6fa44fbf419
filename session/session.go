// Package session holds the driver instances of one lease and the calls and
// streams in flight to them. A session starts its plugin processes fresh,
// resets them, routes calls and streams by uuid, and at its end cancels what
// is in flight, closes the drivers and stops their processes: nothing a
// driver did in one session survives into the next.
package session

import (
	"context"
	"errors"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/internal/grpcerr"
	"github.com/jumpwire-dev/jumpwire/metrics"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// ErrEnded is the cause given to calls and streams cut off by the session's end.
var ErrEnded = status.Error(codes.Unavailable, "the session ended")

// Options configures a session.
type Options struct {
	// Launch configures every plugin process (timeouts, environment).
	Launch host.LaunchOptions
	// Policy says how crashed drivers are restarted.
	Policy host.Policy
	// Logger is named per instance for the plugins' logs.
	Logger hclog.Logger
	// StopTimeout bounds each driver's Close at the session's end. Default 5s.
	StopTimeout time.Duration
	// MaxCalls and MaxStreams bound the calls (unary and streaming) and the
	// byte streams in flight in the session at once, so that one client
	// cannot exhaust the exporter; past them, new ones fail with
	// RESOURCE_EXHAUSTED. Defaults 256 and 64.
	MaxCalls, MaxStreams int
	// Metrics, when set, counts the session's calls, streams and bytes per
	// driver, and reports its drivers' state at each scrape.
	Metrics *metrics.Metrics
}

// Default limits of a session.
const (
	DefaultMaxCalls   = 256
	DefaultMaxStreams = 64
)

// Session is the running driver instances of one lease, by uuid. It holds
// the instances that run a driver only: the exporter's tree resolves an
// alias (a ref) to the uuid of the instance it stands for before a call
// gets here.
type Session struct {
	ctx  context.Context
	end  context.CancelCauseFunc
	opts Options

	instMu sync.RWMutex // guards byUUID and meters: a reload adds, swaps and removes instances
	byUUID map[string]*host.Supervised
	meters map[*host.Supervised]*metrics.Driver // nil without Options.Metrics

	mu       sync.Mutex
	ended    bool
	inflight sync.WaitGroup
	calls    int                 // calls in flight
	streams  int                 // byte streams and uploads open
	uploads  map[string]*offered // uploads no call has claimed yet, by handle
}

// StartError lists the instances that could not start, by uuid, and what
// the others answered to their config before everything was stopped (so a
// caller can check all of them at once).
type StartError struct {
	Failures   map[string]error
	Configured map[string]*pluginv1.ConfigureResponse
}

func (e *StartError) Error() string {
	errs := make([]error, 0, len(e.Failures))
	for _, err := range e.Failures {
		errs = append(errs, err)
	}
	return errors.Join(errs...).Error()
}

// Start starts a process for every spec (by uuid) in parallel and resets each
// instance. If any instance fails, everything started is stopped and the
// error is a *StartError naming each failure.
func Start(ctx context.Context, specs map[string]host.Spec, o Options) (*Session, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 5 * time.Second
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = DefaultMaxCalls
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	s := &Session{opts: o, byUUID: make(map[string]*host.Supervised, len(specs)),
		meters: map[*host.Supervised]*metrics.Driver{}}
	s.ctx, s.end = context.WithCancelCause(context.Background())

	var mu sync.Mutex
	failures := map[string]error{}
	var wg sync.WaitGroup
	for id, spec := range specs {
		wg.Go(func() {
			inst, err := s.supervise(ctx, spec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures[id] = err
				return
			}
			s.byUUID[id] = inst
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		se := &StartError{Failures: failures, Configured: map[string]*pluginv1.ConfigureResponse{}}
		for id, inst := range s.byUUID {
			se.Configured[id] = inst.Configured()
		}
		_ = s.End(context.Background(), nil)
		return nil, se
	}
	for _, inst := range s.byUUID {
		s.meter(inst)
	}
	s.opts.Metrics.SessionStarted(s)
	return s, nil
}

// meter makes the metrics of inst (under instMu, or before the session is
// shared) when the session has metrics.
func (s *Session) meter(inst *host.Supervised) {
	if s.opts.Metrics == nil {
		return
	}
	spec := inst.Spec()
	d := s.opts.Metrics.Driver(spec.Path, spec.Type)
	d.Methods(methodNames(inst.Configured()))
	s.meters[inst] = d
}

func methodNames(conf *pluginv1.ConfigureResponse) []string {
	names := make([]string, 0, len(conf.GetMethods()))
	for _, m := range conf.GetMethods() {
		names = append(names, m.GetName())
	}
	return names
}

// instance returns the supervised instance serving uuid and its metrics
// (nil without them).
func (s *Session) instance(uuid string) (*host.Supervised, *metrics.Driver, error) {
	s.instMu.RLock()
	inst, ok := s.byUUID[uuid]
	d := s.meters[inst]
	s.instMu.RUnlock()
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "no driver instance with uuid %s", uuid)
	}
	return inst, d, nil
}

// Instances lists each driver instance once, as metrics scrapes see them.
func (s *Session) Instances() []metrics.Instance {
	insts := s.instances()
	out := make([]metrics.Instance, 0, len(insts))
	for _, inst := range insts {
		spec, h := inst.Spec(), inst.Health()
		out = append(out, metrics.Instance{Path: spec.Path, Type: spec.Type, State: h.State.String(), Pid: h.Pid, Restarts: h.Restarts})
	}
	return out
}

// InFlight is the number of calls and byte streams in flight.
func (s *Session) InFlight() (calls, streams int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.streams
}

// Instance returns the supervised instance serving uuid.
func (s *Session) Instance(uuid string) (*host.Supervised, error) {
	s.instMu.RLock()
	inst, ok := s.byUUID[uuid]
	s.instMu.RUnlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no driver instance with uuid %s", uuid)
	}
	return inst, nil
}

// Configured returns what the instance for uuid answered to its config.
func (s *Session) Configured(uuid string) *pluginv1.ConfigureResponse {
	if inst, err := s.Instance(uuid); err == nil {
		return inst.Configured()
	}
	return nil
}

// Health reports the state of the instance serving uuid.
func (s *Session) Health(uuid string) (host.Health, bool) {
	inst, err := s.Instance(uuid)
	if err != nil {
		return host.Health{}, false
	}
	return inst.Health(), true
}

// Pids returns the plugin process ids by uuid.
func (s *Session) Pids() map[string]int {
	s.instMu.RLock()
	defer s.instMu.RUnlock()
	out := make(map[string]int, len(s.byUUID))
	for id, inst := range s.byUUID {
		out[id] = inst.Pid()
	}
	return out
}

// begin registers a call and joins its context with the session's.
// kind says which of the session's limits a call counts against.
type kind int

const (
	call kind = iota
	stream
)

func (s *Session) begin(ctx context.Context, k kind) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		if cause := context.Cause(s.ctx); cause != nil {
			return nil, nil, cause // why it ended: the lease was released, the exporter stops
		}
		return nil, nil, ErrEnded
	}
	n, limit, what, label := &s.calls, s.opts.MaxCalls, "calls", "calls"
	if k == stream {
		n, limit, what, label = &s.streams, s.opts.MaxStreams, "byte streams", "streams"
	}
	if *n >= limit {
		s.opts.Metrics.Rejected(label)
		return nil, nil, status.Errorf(codes.ResourceExhausted,
			"this session already has %d %s in flight, its limit; wait for some to finish", limit, what)
	}
	*n++
	s.inflight.Add(1)
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.ctx, func() { cancel(context.Cause(s.ctx)) })
	var once sync.Once
	return c, func() {
		once.Do(func() {
			stop()
			cancel(nil)
			s.mu.Lock()
			*n--
			s.mu.Unlock()
			s.inflight.Done()
		})
	}, nil
}

// Call calls a unary method of the instance uuid. Upload handles among the
// arguments (see Offer) hand their uploads to the driver.
func (s *Session) Call(ctx context.Context, uuid, method string, args []*structpb.Value) (v *structpb.Value, err error) {
	inst, d, err := s.instance(uuid)
	if err != nil {
		return nil, err
	}
	op, start := d.Op(method), time.Now()
	defer func() { op.Done(start, err) }()
	ctx, done, err := s.begin(ctx, call)
	if err != nil {
		return nil, err
	}
	defer done()
	args, taken, err := s.claim(args)
	if err != nil {
		return nil, err
	}
	defer finishAll(taken)
	v, err = inst.Call(ctx, method, args, hostUploads(taken)...)
	if err != nil {
		if broke := brokenUpload(taken); broke != nil {
			err = broke
		}
	} else if broke := brokenDownload(taken); broke != nil {
		v, err = nil, broke
	}
	return v, s.cause(ctx, err)
}

// finishAll ends the uploads a call took, read or not.
func finishAll(taken []*offered) {
	for _, o := range taken {
		o.finish(nil)
	}
}

// StreamingCall calls a method of uuid whose results arrive one by one.
func (s *Session) StreamingCall(ctx context.Context, uuid, method string, args []*structpb.Value) iter.Seq2[*structpb.Value, error] {
	return func(yield func(*structpb.Value, error) bool) {
		inst, d, err := s.instance(uuid)
		if err != nil {
			yield(nil, err)
			return
		}
		op, start := d.Op(method), time.Now()
		var failed error
		defer func() { op.Done(start, failed) }()
		ctx, done, err := s.begin(ctx, call)
		if err != nil {
			failed = err
			yield(nil, err)
			return
		}
		defer done()
		args, taken, err := s.claim(args)
		if err != nil {
			failed = err
			yield(nil, err)
			return
		}
		defer finishAll(taken)
		for v, err := range inst.StreamingCall(ctx, method, args, hostUploads(taken)...) {
			if err != nil {
				if broke := brokenUpload(taken); broke != nil {
					err = broke
				}
			}
			err = s.cause(ctx, err)
			if err != nil {
				failed = err
			}
			if !yield(v, err) {
				return
			}
		}
		if failed == nil {
			if broke := brokenDownload(taken); broke != nil {
				failed = broke
				yield(nil, broke)
			}
		}
	}
}

// Stream opens a byte stream to method of uuid; release must be called when
// the stream is finished with. The session's end cancels it. explain turns
// the error that ended the stream into the reason a client should see (the
// driver died, the session ended).
func (s *Session) Stream(ctx context.Context, uuid, method string) (st pluginv1.Driver_StreamClient, explain func(error) error, release func(), err error) {
	inst, d, err := s.instance(uuid)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, done, err := s.begin(ctx, stream)
	if err != nil {
		return nil, nil, nil, err
	}
	st, proc, cancel, err := inst.Stream(ctx, method)
	if err != nil {
		done()
		return nil, nil, nil, s.cause(ctx, err)
	}
	explain = func(err error) error { return s.cause(ctx, proc.StreamError(ctx, st, err)) }
	if d == nil {
		return st, explain, func() { cancel(); done() }, nil
	}
	d.StreamOpened()
	var once sync.Once
	return &countedStream{Driver_StreamClient: st, d: d}, explain, func() {
		cancel()
		done()
		once.Do(d.StreamClosed)
	}, nil
}

// countedStream counts the data a byte stream carries, frame by frame, as
// the exporter relays them with SendMsg and RecvMsg.
type countedStream struct {
	pluginv1.Driver_StreamClient
	d *metrics.Driver
}

func (c *countedStream) SendMsg(m any) error {
	n := 0
	if f, ok := m.(*protocol.Frame); ok && f.Kind() == protocol.KindData {
		n = f.Len()
	}
	err := c.Driver_StreamClient.SendMsg(m)
	if err == nil {
		c.d.Received(n)
	}
	return err
}

func (c *countedStream) RecvMsg(m any) error {
	err := c.Driver_StreamClient.RecvMsg(m)
	if f, ok := m.(*protocol.Frame); ok && err == nil && f.Kind() == protocol.KindData {
		c.d.Sent(f.Len())
	}
	return err
}

// cause prefers the session's reason when the session cut the call off.
func (s *Session) cause(ctx context.Context, err error) error {
	if err != nil && s.ctx.Err() != nil && ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	return err
}

// Reset resets every instance, in the order of their paths. Each failure
// keeps its driver's code; the first decides the code of the whole.
func (s *Session) Reset(ctx context.Context) error {
	insts := s.instances()
	slices.SortFunc(insts, func(a, b *host.Supervised) int { return strings.Compare(a.Spec().Path, b.Spec().Path) })
	var errs []error
	for _, inst := range insts {
		if err := inst.Reset(ctx); err != nil {
			errs = append(errs, grpcerr.Wrap(err, "reset %s", inst.Spec().Path))
		}
	}
	return grpcerr.Join(errs...)
}

// instances lists the running instances.
func (s *Session) instances() []*host.Supervised {
	s.instMu.RLock()
	defer s.instMu.RUnlock()
	return slices.Collect(maps.Values(s.byUUID))
}

// End ends the session: calls and streams in flight are cancelled with cause
// (ErrEnded when nil), every driver is closed and every process stopped. It
// is idempotent.
func (s *Session) End(ctx context.Context, cause error) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	s.ended = true
	s.mu.Unlock()
	if cause == nil {
		cause = ErrEnded
	}
	s.end(cause)
	s.inflight.Wait()
	if s.opts.Metrics != nil {
		restarts := map[string]int{}
		for _, inst := range s.instances() {
			restarts[inst.Spec().Path] = inst.Health().Restarts
		}
		defer s.opts.Metrics.SessionEnded(restarts)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, inst := range s.instances() {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, s.opts.StopTimeout)
			defer cancel()
			if err := inst.Stop(cctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// supervise starts a supervised instance of spec, logging under its path.
func (s *Session) supervise(ctx context.Context, spec host.Spec) (*host.Supervised, error) {
	lo := s.opts.Launch
	lo.Logger = s.opts.Logger.Named(spec.Path)
	return host.Supervise(ctx, spec, lo, s.opts.Policy)
}

// Add starts a new instance under uuid (a reload added it to the config).
func (s *Session) Add(ctx context.Context, uuid string, spec host.Spec) error {
	inst, err := s.supervise(ctx, spec)
	if err != nil {
		return err
	}
	s.instMu.Lock()
	s.byUUID[uuid] = inst
	s.meter(inst)
	s.instMu.Unlock()
	return nil
}

// Remove stops the instance under uuid (a reload removed it).
func (s *Session) Remove(ctx context.Context, uuid string) error {
	s.instMu.Lock()
	inst, ok := s.byUUID[uuid]
	delete(s.byUUID, uuid)
	delete(s.meters, inst)
	s.instMu.Unlock()
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.StopTimeout)
	defer cancel()
	return inst.Stop(cctx)
}

// Swap replaces the process of the instance under uuid with one running
// spec; see host.Supervised.Swap.
func (s *Session) Swap(ctx context.Context, uuid string, spec host.Spec, o host.SwapOptions) error {
	inst, d, err := s.instance(uuid)
	if err != nil {
		return err
	}
	if err := inst.Swap(ctx, spec, o); err != nil {
		return err
	}
	if d != nil {
		s.instMu.Lock()
		s.meter(inst) // the new binary may export other methods, or be another type
		d = s.meters[inst]
		s.instMu.Unlock()
		d.Swapped()
	}
	return nil
}
