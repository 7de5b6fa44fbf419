package host

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/internal/grpcerr"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Policy says how a supervised driver is restarted. Zero fields take the
// defaults given.
type Policy struct {
	// InitialBackoff is the wait before the first restart (default 10ms);
	// each further restart doubles it, up to MaxBackoff (default 5s), with
	// ±20% jitter so drivers that died together do not restart together.
	InitialBackoff, MaxBackoff time.Duration
	// MaxCrashes within Window (defaults 5 in 60s) mark the driver failed:
	// its calls fail fast until RetryAfter (default 30s) has passed, when it
	// is tried again.
	MaxCrashes int
	Window     time.Duration
	RetryAfter time.Duration
	// MaxWait bounds how long a call waits for a restarting driver (default
	// 10s); the call's own deadline may end the wait sooner.
	MaxWait time.Duration
}

func (p Policy) withDefaults() Policy {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.InitialBackoff, 10*time.Millisecond)
	def(&p.MaxBackoff, 5*time.Second)
	def(&p.Window, time.Minute)
	def(&p.RetryAfter, 30*time.Second)
	def(&p.MaxWait, 10*time.Second)
	if p.MaxCrashes <= 0 {
		p.MaxCrashes = 5
	}
	return p
}

// State is where a supervised driver is in its life.
type State int

// The states of a supervised driver.
const (
	Running    State = iota // serving calls
	Restarting              // its process died; a new one is on the way
	Failed                  // it crashed too often; calls fail fast until it is retried
	Stopped                 // it was stopped on purpose
)

func (s State) String() string {
	return [...]string{"running", "restarting", "failed", "stopped"}[s]
}

// Health is what operators see of a supervised driver.
type Health struct {
	State    State
	Restarts int    // restarts since the driver was first started
	LastExit string // how its last process ended, "" if none did
	Pid      int    // the current process, 0 when there is none
}

// Supervised is a driver instance that outlives its plugin processes: when
// one dies, calls in flight fail with UNAVAILABLE naming the driver and the
// exit, a new process is started and configured with the same config, and
// calls arriving meanwhile wait for it. Only the first process is Reset: a
// successor (after a crash or a swap) serves the same lease, and the device
// keeps the state the lease gave it.
type Supervised struct {
	spec   Spec
	launch LaunchOptions
	policy Policy
	logger hclog.Logger
	life   context.Context // ends at Stop
	stop   context.CancelFunc
	done   chan struct{} // closed when the supervising goroutine returns
	// bg tracks what runs on after its cause: dead processes being released,
	// replaced ones draining. Stop waits for it.
	bg sync.WaitGroup

	mu       sync.Mutex
	cur      *Instance
	conf     *pluginv1.ConfigureResponse
	health   Health
	failErr  error         // why calls fail while Failed
	changed  chan struct{} // closed and replaced on every change
	crashes  []time.Time
	stopping bool
}

// Supervise starts the driver (launch, configure, reset) and supervises it
// until Stop. An error starting it the first time (a bad binary, a rejected
// config) is returned as is: there is nothing to restart.
func Supervise(ctx context.Context, spec Spec, launch LaunchOptions, policy Policy) (*Supervised, error) {
	if launch.Logger == nil {
		launch.Logger = hclog.NewNullLogger()
	}
	inst, err := startReset(ctx, spec, launch)
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	s := &Supervised{
		spec: spec, launch: launch, policy: policy.withDefaults(), logger: launch.Logger,
		life: sctx, stop: stop, done: make(chan struct{}), cur: inst, conf: inst.Configured(),
		health: Health{State: Running, Pid: inst.Pid()}, changed: make(chan struct{}),
	}
	go s.supervise(sctx)
	return s, nil
}

func startReset(ctx context.Context, spec Spec, launch LaunchOptions) (*Instance, error) {
	inst, err := Start(ctx, spec, launch)
	if err != nil {
		return nil, err
	}
	if err := inst.Reset(ctx); err != nil {
		_ = inst.Stop(ctx)
		return nil, grpcerr.Wrap(err, "reset %s", spec.Path)
	}
	return inst, nil
}

// setLocked records a change and wakes everyone waiting for one.
func (s *Supervised) setLocked(st State, cur *Instance, failErr error) {
	s.health.State, s.cur, s.failErr = st, cur, failErr
	s.health.Pid = 0
	if cur != nil {
		s.health.Pid = cur.Pid()
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// supervise waits for the current process to die and replaces it.
func (s *Supervised) supervise(ctx context.Context) {
	defer close(s.done)
	for {
		s.mu.Lock()
		cur, changed := s.cur, s.changed
		s.mu.Unlock()
		var died <-chan struct{} // nil while a swap has no process in place
		if cur != nil {
			died = cur.Done()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			continue // a swap put another process in place
		case <-died:
		}
		s.mu.Lock()
		swapped := s.cur != cur
		s.mu.Unlock()
		if swapped {
			continue
		}
		reason := cur.proc.ExitReason()
		// Release what go-plugin holds for the dead process (its connection,
		// goroutines and socket directory); nothing else stops it.
		s.bg.Go(func() { cur.proc.Stop() })
		now := time.Now()
		s.mu.Lock()
		s.health.LastExit = reason
		s.crashes = append(s.crashes, now)
		s.setLocked(Restarting, nil, nil)
		s.mu.Unlock()
		if !s.restart(ctx, reason) {
			return
		}
	}
}

// restart starts a successor after a crash, backing off, and marks the
// driver failed while it crash-loops. It returns false when stopped.
func (s *Supervised) restart(ctx context.Context, reason string) bool {
	for attempt := 0; ; attempt++ {
		wait := s.backoff(attempt)
		if n := s.recentCrashes(); n >= s.policy.MaxCrashes {
			msg := fmt.Sprintf("driver %s (%s) failed: it crashed %d times within %s (last: %s); it will be retried in %s",
				s.spec.Path, s.spec.Type, n, s.policy.Window, reason, s.policy.RetryAfter)
			s.logger.Error("driver is crash-looping; failing its calls until it is retried",
				"crashes", n, "window", s.policy.Window, "last_exit", reason, "retry_in", s.policy.RetryAfter)
			s.mu.Lock()
			s.setLocked(Failed, nil, status.Error(codes.Unavailable, msg))
			s.crashes = nil
			s.mu.Unlock()
			wait = s.policy.RetryAfter
		} else {
			s.logger.Warn("driver process exited; restarting", "exit", reason, "in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		inst, err := Start(ctx, s.spec, s.launch) // configured, not Reset: the lease goes on
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			reason = err.Error()
			s.logger.Error("restarting the driver failed", "error", err)
			s.mu.Lock()
			s.health.LastExit = reason
			s.crashes = append(s.crashes, time.Now())
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			_ = inst.Stop(context.Background())
			return false
		}
		s.health.Restarts++
		s.setLocked(Running, inst, nil)
		s.mu.Unlock()
		s.logger.Info("driver restarted", "pid", inst.Pid(), "restarts", s.health.Restarts)
		return true
	}
}

func (s *Supervised) recentCrashes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := time.Now().Add(-s.policy.Window)
	n := 0
	for _, t := range s.crashes {
		if t.After(cut) {
			n++
		}
	}
	return n
}

// backoff is the wait before restart attempt n (from 0), with jitter. It
// doubles with every attempt and every other crash within the window; the
// crash being restarted may already have left a short window (or the
// supervisor was slow to get here), so the doubling starts at 0.
func (s *Supervised) backoff(n int) time.Duration {
	d := s.policy.InitialBackoff << min(max(n+s.recentCrashes()-1, 0), 20)
	if d <= 0 || d > s.policy.MaxBackoff {
		d = s.policy.MaxBackoff
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// acquire returns the running instance, waiting for a restart when there is
// one under way (bounded by ctx and MaxWait). The instance counts the caller
// as busy until release: a swap that replaces it meanwhile drains the call
// instead of stopping the process before the call has reached it.
func (s *Supervised) acquire(ctx context.Context) (inst *Instance, release func(), err error) {
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		st, cur, failErr, changed, last := s.health.State, s.cur, s.failErr, s.changed, s.health.LastExit
		if st == Running {
			cur.enter() // under mu: Swap retires cur only after replacing it under mu, so its Drain sees this
		}
		s.mu.Unlock()
		switch st {
		case Running:
			if cur.alive() == nil {
				return cur, cur.leave, nil
			}
			cur.leave()
		case Failed:
			return nil, nil, failErr
		case Stopped:
			return nil, nil, status.Errorf(codes.Unavailable, "driver %s is stopped", s.spec.Path)
		}
		if timeout == nil {
			timeout = time.After(s.policy.MaxWait)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil, status.Errorf(status.FromContextError(ctx.Err()).Code(),
				"driver %s is restarting (its process %s) and did not come back before the call's deadline", s.spec.Path, last)
		case <-timeout:
			return nil, nil, status.Errorf(codes.Unavailable,
				"driver %s is restarting (its process %s) and did not come back within %s", s.spec.Path, last, s.policy.MaxWait)
		}
	}
}

// Spec is what the driver runs.
func (s *Supervised) Spec() Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spec
}

// Configured is what the driver answered to its config when it (or its
// latest replacement) was started.
func (s *Supervised) Configured() *pluginv1.ConfigureResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conf
}

// Health reports the driver's state, restarts and last exit.
func (s *Supervised) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// Pid is the current plugin process's id, 0 while there is none.
func (s *Supervised) Pid() int { return s.Health().Pid }

// Call calls a unary method, waiting for a restart under way. The uploads
// its arguments name go to the same process.
func (s *Supervised) Call(ctx context.Context, method string, args []*structpb.Value, uploads ...Upload) (*structpb.Value, error) {
	inst, release, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return inst.call(ctx, method, args, uploads)
}

// StreamingCall calls a streaming method, waiting for a restart under way.
func (s *Supervised) StreamingCall(ctx context.Context, method string, args []*structpb.Value, uploads ...Upload) iter.Seq2[*structpb.Value, error] {
	return func(yield func(*structpb.Value, error) bool) {
		inst, release, err := s.acquire(ctx)
		if err != nil {
			yield(nil, err)
			return
		}
		defer release()
		inst.streamingCall(ctx, method, args, uploads, yield)
	}
}

// Stream opens a byte stream, waiting for a restart under way. The returned
// instance explains how the stream ended (Instance.StreamError).
func (s *Supervised) Stream(ctx context.Context, method string) (pluginv1.Driver_StreamClient, *Instance, context.CancelFunc, error) {
	inst, release, err := s.acquire(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	defer release() // once open, the stream counts as busy on its own
	st, cancel, err := inst.Stream(ctx, method)
	return st, inst, cancel, err
}

// Reset resets the running instance.
func (s *Supervised) Reset(ctx context.Context) error {
	inst, release, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return inst.Reset(ctx)
}

// Stop stops supervising, calls the driver's Close and stops its process.
// It is idempotent.
func (s *Supervised) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.stopping = true
	cur := s.cur
	s.mu.Unlock()
	s.stop()
	<-s.done
	var err error
	if cur != nil {
		err = cur.Stop(ctx)
	}
	s.bg.Wait() // a replaced process draining, a dead one released
	s.mu.Lock()
	s.setLocked(Stopped, nil, nil)
	s.mu.Unlock()
	return err
}

// SwapOptions says how a driver is replaced.
type SwapOptions struct {
	// Exclusive drivers own a device only one process may open: the old
	// process is stopped before its successor starts, and calls arriving in
	// the gap wait for the successor (bounded by the Policy's MaxWait).
	Exclusive bool
	// Drain bounds how long calls and streams on the old process may go on
	// after the switch; then it is stopped and what is left ends with a
	// "replaced" reason. Default 5s.
	Drain time.Duration
}

// Swap replaces the driver's process with one running spec (a new binary or
// config) under the same identity. New calls go to the successor once it has
// started and accepted its config; it is not Reset, so the device keeps the
// state the lease gave it. Calls in flight on the old process may finish
// (up to the drain deadline). If the successor fails to start, the old
// process stays (for an exclusive driver: is started again) and the error
// says why.
func (s *Supervised) Swap(ctx context.Context, spec Spec, o SwapOptions) error {
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return status.Errorf(codes.Unavailable, "driver %s is stopped", s.spec.Path)
	}
	old, oldSpec := s.cur, s.spec
	if o.Exclusive {
		s.setLocked(Restarting, nil, nil) // calls wait for the successor
	}
	s.mu.Unlock()

	reason := fmt.Sprintf("driver %s was replaced (a new binary or config was loaded); reconnect to use the new one", spec.Path)
	retire := func() {
		if old == nil {
			return
		}
		old.Retire(reason)
		// The drain ends early when the driver is stopped.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Drain)
		stopDrain := context.AfterFunc(s.life, cancel)
		_ = old.Drain(dctx)
		stopDrain()
		cancel()
		// Closing (handing over: the successor adopts the device) gets the
		// drain's time again, then the process is stopped whatever its
		// driver is doing.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Drain)
		_ = old.HandOver(sctx)
		cancel()
	}
	if o.Exclusive {
		retire()
	}
	inst, err := Start(ctx, spec, s.launch)
	if err != nil {
		s.logger.Error("replacing the driver failed; keeping what runs", "error", err)
		if o.Exclusive {
			back, berr := Start(context.WithoutCancel(ctx), oldSpec, s.launch)
			s.mu.Lock()
			if berr != nil {
				s.setLocked(Failed, nil, status.Errorf(codes.Unavailable,
					"driver %s failed: its replacement failed (%v) and restarting the old one failed too (%v)", spec.Path, err, berr))
			} else {
				s.setLocked(Running, back, nil)
			}
			s.mu.Unlock()
		}
		return err
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		_ = inst.Stop(context.WithoutCancel(ctx))
		return status.Errorf(codes.Unavailable, "driver %s is stopped", s.spec.Path)
	}
	s.spec, s.conf = spec, inst.Configured()
	s.health.LastExit = ""
	s.setLocked(Running, inst, nil)
	if !o.Exclusive {
		s.bg.Go(retire) // under s.mu, not stopping: before Stop waits
	}
	s.mu.Unlock()
	s.logger.Info("driver replaced", "pid", inst.Pid(), "binary", spec.Binary)
	return nil
}
