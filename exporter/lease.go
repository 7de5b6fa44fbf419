package exporter

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/routerconn"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The lease worker: one goroutine that serves the leases the controller
// assigns, one at a time. A lease is a session (started fresh when the
// previous lease ended), the before-lease hook, a Listen stream, and a gRPC
// server that serves each client connection the router carries. Its end
// runs the after-lease hook, releases the lease, reports AVAILABLE and
// starts the next fresh session.

// errExitOnLeaseEnd stops Serve, without an error, after a lease when the
// config says exitOnLeaseEnd (a supervisor starts a fresh exporter).
var errExitOnLeaseEnd = errors.New("exporter: the lease ended and the config says exitOnLeaseEnd")

// endedMemory is how many ended lease names the worker remembers, so that a
// controller still saying "leased" for a lease this exporter ended does
// not start it again.
const endedMemory = 16

// stopGrace is how long a lease's server lets calls finish (EndSession's
// answer, the last log lines) before it closes every client connection.
const stopGrace = 2 * time.Second

// lease is the lease being served.
type lease struct {
	name, client string
	ctx          context.Context // ends with the lease: Listen and every router stream
	cancel       context.CancelFunc
	lis          *routerconn.Listener
	srv          *grpc.Server
	// ready is closed once the before-lease hook is over: client
	// connections announced before then wait, as upstream's exporter
	// holds them.
	ready chan struct{}
}

// endRequest is a client's EndSession, answered once the lease is over.
type endRequest struct {
	reply chan endReply
}

type endReply struct {
	ok  bool
	msg string
}

// leases is the lease worker.
func (l *controllerLink) leases(ctx context.Context) {
	var (
		cur     *lease
		retry   *time.Timer // restarts the drivers when no session could start
		retryC  <-chan time.Time
		retries int
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		if cur == nil && retryC == nil && l.noSession() {
			retry = time.NewTimer(6 * retryDelay(retries)) // about 1 s, growing to 30 s
			retryC = retry.C
		}
		select {
		case <-retryC:
			retryC = nil
			if l.restartSession(ctx) {
				retries = 0
			} else {
				retries++
			}
			continue
		case <-ctx.Done():
			if cur != nil {
				// The exporter stops, the lease goes on: after a restart the
				// controller hands it back and clients dial again.
				l.stopServing(cur, false)
			}
			return
		case r := <-l.endReqs:
			if cur == nil {
				r.reply <- endReply{false, "there is no lease to end"}
				continue
			}
			name := cur.name
			msg := l.endLease(ctx, cur, true, true, true, "ended by the client")
			cur = nil
			r.reply <- endReply{true, "lease " + name + " ended" + msg}
		case <-l.wake:
		}
		cur = l.reconcile(ctx, cur)
	}
}

// noSession reports whether the exporter, neither closing nor exiting, has
// no session for the next lease (the last one failed to start).
func (l *controllerLink) noSession() bool {
	e := l.e
	e.mu.Lock()
	missing := e.sess == nil && !e.closed
	e.mu.Unlock()
	return missing && !e.exiting()
}

// restartSession tries again to start the session the next lease needs,
// and reports AVAILABLE when it starts.
func (l *controllerLink) restartSession(ctx context.Context) bool {
	e := l.e
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	if !l.noSession() {
		return true
	}
	if err := e.startSession(ctx); err != nil {
		l.log.Debug("the drivers still fail to start", "error", err)
		return false
	}
	l.log.Info("the drivers started again; the exporter is available")
	e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, "the drivers started again")
	return true
}

// reconcile brings what is served in line with the controller's word.
func (l *controllerLink) reconcile(ctx context.Context, cur *lease) *lease {
	l.mu.Lock()
	want := l.want
	l.mu.Unlock()
	name := want.GetLeaseName()
	leased := want.GetLeased() && name != ""
	if cur != nil && (!leased || name != cur.name) {
		l.endLease(ctx, cur, false, true, false, "released by the controller")
		cur = nil
	}
	if !leased {
		return cur
	}
	l.mu.Lock()
	ended, unreleased := slices.Contains(l.ended, name), l.unreleased[name]
	l.mu.Unlock()
	switch {
	case cur != nil:
		if c := want.GetClientName(); c != cur.client {
			cur.client = c
			l.setLease(cur)
		}
		return cur
	case unreleased:
		// Ended here, but the release did not get through: try again.
		if l.release(ctx, name) {
			l.log.Info("lease released", "lease", name)
		}
		return nil
	case ended:
		return nil // the controller has yet to hear of its end
	}
	return l.beginLease(ctx, name, want.GetClientName())
}

func (l *controllerLink) setLease(ls *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls == nil {
		l.st.LeaseName, l.st.ClientName = "", ""
		return
	}
	l.st.LeaseName, l.st.ClientName = ls.name, ls.client
}

// beginLease serves a lease: a fresh session (the one started when the last
// lease ended, unless it failed), Listen, then the before-lease hook and
// LEASE_READY. When the hook fails with onFailure: endLease, the lease is
// released at once.
func (l *controllerLink) beginLease(ctx context.Context, name, client string) *lease {
	e := l.e
	l.log.Info("lease started", "lease", name, "client", client)
	ls := &lease{name: name, client: client, lis: routerconn.NewListener(routerconn.Addr("lease " + name)), ready: make(chan struct{})}
	ls.ctx, ls.cancel = context.WithCancel(ctx)
	ls.srv = e.newServer(ls.lis, false)
	go func() { _ = ls.srv.Serve(ls.lis) }()
	l.setLease(ls)
	go l.listen(ls)

	e.lifeMu.Lock()
	var err error
	if e.Session() == nil {
		err = e.startSession(ctx)
	}
	e.lifeMu.Unlock()
	if err != nil {
		l.log.Error("the lease's drivers failed to start; releasing the lease", "lease", name, "error", err)
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, "the drivers failed to start: "+err.Error())
		l.release(ctx, name)
		l.stopServing(ls, true)
		l.remember(name)
		return nil
	}
	e.beginLease(ls.ctx)
	close(ls.ready)
	st, _ := e.Status()
	switch {
	case st.Status == jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY:
		l.log.Info("lease ready: clients may connect through the router", "lease", name)
	case e.exiting():
		l.log.Error("the before-lease hook failed and the config says onFailure: exit", "lease", name)
	case st.Status == beforeLease.failed:
		l.log.Error("the before-lease hook failed; ending the lease (onFailure: endLease)", "lease", name)
		l.endLease(ctx, ls, true, false, false, "the before-lease hook failed")
		return nil
	}
	return ls
}

// endLease ends a lease: the after-lease hook (runAfter, when there is a
// session to run it against), every client connection closed (but for a
// client's EndSession, whose answer goes out first: byClient),
// ReleaseLease when this exporter ends the lease (release), AVAILABLE, the
// session's end, and the next fresh session. It returns what to add to the
// message of a client's EndSession.
func (l *controllerLink) endLease(ctx context.Context, ls *lease, release, runAfter, byClient bool, why string) string {
	e := l.e
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	msg := ""
	if h := e.Config().Hooks.AfterLease; runAfter && h != nil && e.Session() != nil {
		if err := e.hook(ls.ctx, afterLease, h); err != nil {
			msg = "; " + err.Error()
		}
	}
	l.remember(ls.name)
	if !byClient {
		l.stopServing(ls, false)
	}
	if release {
		l.release(ctx, ls.name)
	}
	e.mu.Lock()
	s, closed := e.sess, e.closed
	e.sess = nil
	e.mu.Unlock()
	if !e.exiting() {
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, "lease "+ls.name+" ended"+msg)
	}
	if s != nil {
		if err := s.End(ctx, status.Error(codes.Unavailable, "the lease ended")); err != nil {
			l.log.Warn("ending the lease's session", "error", err)
		}
	}
	if byClient {
		l.stopServing(ls, true)
	}
	l.log.Info("lease ended", "lease", ls.name, "why", why)
	if closed || e.exiting() || ctx.Err() != nil {
		return msg
	}
	if e.Config().ExitOnLeaseEnd {
		l.log.Info("the config says exitOnLeaseEnd: the exporter stops")
		select {
		case e.fatal <- errExitOnLeaseEnd:
		default:
		}
		return msg
	}
	if err := e.startSession(ctx); err != nil {
		l.log.Error("the next session failed to start", "error", err)
		e.setStatus(jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, "the next session failed to start: "+err.Error())
		return msg + "; the next session failed to start: " + err.Error()
	}
	return msg
}

// remember notes a lease this exporter ended.
func (l *controllerLink) remember(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.ended, name) {
		l.ended = append(l.ended, name)
		if len(l.ended) > endedMemory {
			l.ended = l.ended[1:]
		}
	}
}

// stopServing ends a lease's Listen and closes its client connections;
// graceful lets calls in flight (a client's EndSession) finish for
// stopGrace first, in the background.
func (l *controllerLink) stopServing(ls *lease, graceful bool) {
	l.setLease(nil)
	_ = ls.lis.Close()
	if !graceful {
		ls.srv.Stop()
		ls.cancel()
		return
	}
	go func() {
		t := time.AfterFunc(stopGrace, ls.srv.Stop)
		ls.srv.GracefulStop()
		t.Stop()
		ls.cancel()
	}()
}

// listen follows the lease's Listen stream, reopened with backoff until
// the lease ends, and serves each client connection it announces.
func (l *controllerLink) listen(ls *lease) {
	for n := 0; ls.ctx.Err() == nil; n++ {
		stream, err := l.ctl.Listen(ls.ctx, &jumpstarterv1.ListenRequest{LeaseName: ls.name})
		for err == nil {
			var resp *jumpstarterv1.ListenResponse
			resp, err = stream.Recv()
			if err == nil {
				n = 0
				l.answered()
				go func() {
					select {
					case <-ls.ready:
						l.serveClient(ls, resp)
					case <-ls.ctx.Done():
					}
				}()
			}
		}
		if ls.ctx.Err() != nil {
			return
		}
		l.fail("listen", err)
		if !sleep(ls.ctx, retryDelay(n)) {
			return
		}
	}
}

// serveClient dials the router with the token the controller gave and
// serves the client's whole gRPC connection over that stream.
func (l *controllerLink) serveClient(ls *lease, resp *jumpstarterv1.ListenResponse) {
	conn, err := dialRouter(resp.RouterEndpoint, resp.RouterToken, l.tls, l.chanOpts)
	if err != nil {
		l.log.Warn("cannot dial the router for a client connection", "lease", ls.name, "router", resp.RouterEndpoint, "error", err)
		return
	}
	ctx, cancel := context.WithCancel(ls.ctx)
	stream, err := jumpstarterv1.NewRouterServiceClient(conn).Stream(ctx)
	if err != nil {
		cancel()
		conn.Close()
		l.log.Warn("cannot open a router stream for a client connection", "lease", ls.name, "router", resp.RouterEndpoint, "error", err)
		return
	}
	rc := routerconn.New(stream, func() { cancel(); conn.Close() },
		routerconn.Addr("exporter"), routerconn.Addr(resp.RouterEndpoint))
	l.log.Info("client connected through the router", "lease", ls.name, "router", resp.RouterEndpoint)
	if err := ls.lis.Put(ctx, rc); err != nil {
		l.log.Debug("the lease ended before its client connection was served", "lease", ls.name)
	}
}

// endSession is a client's EndSession in controller mode: the lease ends
// (after-lease hook, release) and the answer comes once it has.
func (l *controllerLink) endSession(ctx context.Context) (bool, string) {
	r := endRequest{reply: make(chan endReply, 1)}
	select {
	case l.endReqs <- r:
	case <-ctx.Done():
		return false, "ending the lease: " + ctx.Err().Error()
	}
	rep := <-r.reply
	return rep.ok, rep.msg
}
