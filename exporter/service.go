package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/jumpwire-dev/jumpwire/host"
	adminv1 "github.com/jumpwire-dev/jumpwire/proto/admin/v1"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"github.com/jumpwire-dev/jumpwire/session"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// service implements jumpstarter.v1 ExporterService for an Exporter.
type service struct {
	jumpstarterv1.UnimplementedExporterServiceServer
	e *Exporter
}

// Serve serves the jumpstarter.v1 API on lis until ctx is cancelled (or a
// lease hook with onFailure: exit fails), then stops. Options add TLS and a
// passphrase, for TCP listeners; unix sockets also serve the admin service
// (jw reload). In-flight calls are cancelled by the session's end when the
// caller Closes the exporter.
//
// In controller mode (the config has an endpoint) Serve also keeps the
// link to the controller, serves the leases it assigns through its router,
// and reports OFFLINE and unregisters before it returns.
func (e *Exporter) Serve(ctx context.Context, lis net.Listener, opts ...ServeOption) error {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	var sopts []grpc.ServerOption
	if o.tls != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(o.tls)))
	}
	g := &gate{}
	if o.passphrase != nil {
		if *o.passphrase == "" {
			return errors.New("exporter: serve: the passphrase is empty")
		}
		g.auth = newPassphraseAuth(*o.passphrase, e.logger.Named("auth"))
		defer g.auth.refused.stop()
	}
	if lis.Addr().Network() == "tcp" {
		g.guard = newGuard(lis, o.connLimits, e.logger.Named("listen"))
		defer g.guard.refused.stop()
		lis = g.guard
		// A connection must finish its handshakes within the time it has
		// to make its first call.
		sopts = append(sopts, grpc.ConnectionTimeout(g.guard.limits.AnonymousTimeout))
	}
	sopts = append(sopts, grpc.InTapHandle(g.tap))

	srv := e.newServer(lis, o.tls != nil, sopts...)
	if lis.Addr().Network() == "unix" {
		if stopLocal := e.serveLocalFiles(lis.Addr().String()); stopLocal != nil {
			defer stopLocal()
		}
	}
	stop := context.AfterFunc(ctx, srv.Stop)
	defer stop()
	fatal := make(chan error, 1)
	go func() {
		select {
		case err := <-e.fatal:
			fatal <- err
			srv.Stop()
		case <-ctx.Done():
		}
	}()
	e.startLease(ctx)
	if e.link != nil && e.linkRunning.CompareAndSwap(false, true) {
		// Controller mode: the link runs while the exporter serves, and
		// says goodbye to the controller before Serve returns.
		lctx, lcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.link.run(lctx)
		}()
		defer func() {
			lcancel()
			<-done
			e.linkRunning.Store(false)
		}()
	}
	err := srv.Serve(lis)
	select {
	case err := <-fatal:
		if errors.Is(err, errExitOnLeaseEnd) {
			return nil
		}
		return err
	default:
	}
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// newServer is the gRPC server of the exporter's services for lis (under
// TLS when tls is set), with the codec, pool and limits every hop uses and
// the transport settings of its link, and the admin service when lis is a
// unix socket.
func (e *Exporter) newServer(lis net.Listener, tls bool, opts ...grpc.ServerOption) *grpc.Server {
	link := protocol.TCP
	if lis.Addr().Network() == "unix" {
		link |= protocol.Unix
	}
	if tls {
		link |= protocol.TLS
	}
	opts = append(opts,
		grpc.StatsHandler(clientTagger{}),
		// However many calls a connection starts, it has this many at once
		// (HTTP/2 makes the rest wait on the client's side).
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.MaxHeaderListSize(maxHeaderListSize),
		grpc.NumStreamWorkers(streamWorkers))
	srv := grpc.NewServer(append(protocol.ServerOptions(link), opts...)...)
	protocol.RegisterService(srv, &jumpstarterv1.ExporterService_ServiceDesc, &service{e: e})
	protocol.RegisterService(srv, &jumpstarterv1.RouterService_ServiceDesc, &router{e: e})
	if link&protocol.Unix != 0 {
		// Only on a unix socket, whose 0600 mode keeps it to the operator;
		// never over TCP.
		protocol.RegisterService(srv, &adminv1.Admin_ServiceDesc, &admin{e: e})
	}
	return srv
}

func (s *service) GetReport(context.Context, *emptypb.Empty) (*jumpstarterv1.GetReportResponse, error) {
	e := s.e
	nodes, _ := e.tree()
	cfg := e.Config()
	sess := e.Session()
	resp := &jumpstarterv1.GetReportResponse{
		Uuid:   nodes[0].uuid,
		Labels: map[string]string{LabelName: cfg.Metadata.Name},
		Motd:   cfg.Motd,
	}
	for _, n := range nodes {
		src := n
		if n.target != nil {
			src = n.target
		}
		if n.owner != nil {
			src = n.owner // its process's health
		}
		var (
			conf   *pluginv1.ConfigureResponse
			health *host.Health
		)
		if sess != nil {
			conf = sess.Configured(src.uuid)
			if h, ok := sess.Health(src.uuid); ok {
				health = &h
			}
		}
		resp.Reports = append(resp.Reports, e.report(n, conf, health))
	}
	return resp, nil
}

// session returns the current session, or an error saying why driver
// calls are refused: they are served while the lease is ready and while a
// lease hook runs (hooks drive the hardware too).
func (s *service) session() (*session.Session, error) {
	st, _ := s.e.Status()
	switch st.Status {
	case jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY, beforeLease.running, afterLease.running:
		if sess := s.e.Session(); sess != nil {
			return sess, nil
		}
	}
	msg := "driver calls are refused while the exporter is " + statusName(st.Status)
	if m := st.GetMessage(); m != "" {
		msg += ": " + m
	}
	return nil, status.Error(codes.FailedPrecondition, msg)
}

// driverNode checks that uuid names a node clients may call.
func (s *service) driverNode(uuid string) (*node, error) {
	_, byUUID := s.e.tree()
	n, ok := byUUID[uuid]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no driver instance with uuid %q", truncate(uuid, maxEcho))
	}
	if n.target != nil {
		n = n.target
	}
	if n.owner != nil {
		return n, nil // a child its driver made: see route
	}
	if !n.isDriver() {
		name := n.path()
		if name == "" {
			name = "the exporter's root"
		}
		return nil, status.Errorf(codes.NotFound, "%s is a composite and has no methods", name)
	}
	return n, nil
}

func (s *service) DriverCall(ctx context.Context, req *jumpstarterv1.DriverCallRequest) (*jumpstarterv1.DriverCallResponse, error) {
	n, err := s.driverNode(req.Uuid)
	if err != nil {
		return nil, err
	}
	sess, err := s.session()
	if err != nil {
		return nil, err
	}
	done, err := s.e.clients.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, n = route(ctx, n)
	v, err := sess.Call(ctx, n.uuid, req.Method, req.Args)
	if err != nil {
		return nil, err
	}
	return &jumpstarterv1.DriverCallResponse{Uuid: req.Uuid, Result: v}, nil
}

func (s *service) StreamingDriverCall(req *jumpstarterv1.StreamingDriverCallRequest, stream jumpstarterv1.ExporterService_StreamingDriverCallServer) error {
	n, err := s.driverNode(req.Uuid)
	if err != nil {
		return err
	}
	sess, err := s.session()
	if err != nil {
		return err
	}
	done, err := s.e.clients.begin(stream.Context(), false)
	if err != nil {
		return err
	}
	defer done()
	ctx, n := route(stream.Context(), n)
	for v, err := range sess.StreamingCall(ctx, n.uuid, req.Method, req.Args) {
		if err != nil {
			return err
		}
		if err := stream.Send(&jumpstarterv1.StreamingDriverCallResponse{Uuid: req.Uuid, Result: v}); err != nil {
			return err
		}
	}
	return nil
}

func (s *service) Reset(ctx context.Context, _ *jumpstarterv1.ResetRequest) (*jumpstarterv1.ResetResponse, error) {
	sess, err := s.session()
	if err != nil {
		return nil, err
	}
	if err := sess.Reset(ctx); err != nil {
		return nil, err // each driver's code, in its own words
	}
	return &jumpstarterv1.ResetResponse{}, nil
}

func (s *service) GetStatus(context.Context, *jumpstarterv1.GetStatusRequest) (*jumpstarterv1.GetStatusResponse, error) {
	st, _ := s.e.Status()
	return st, nil
}

func (s *service) EndSession(ctx context.Context, _ *jumpstarterv1.EndSessionRequest) (*jumpstarterv1.EndSessionResponse, error) {
	ok, msg := s.e.EndSession(ctx)
	return &jumpstarterv1.EndSessionResponse{Success: ok, Message: &msg}, nil
}

// Status returns the exporter's lease status and a channel closed at its next change.
func (e *Exporter) Status() (*jumpstarterv1.GetStatusResponse, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.status
	resp := &jumpstarterv1.GetStatusResponse{Status: st.cur, StatusVersion: st.version}
	if st.message != "" {
		resp.Message = &st.message
	}
	if st.version > 1 {
		resp.PreviousStatus = &st.prev
	}
	return resp, e.changed
}

// Limits of every connection to the exporter's services.
const (
	// maxStreamsPerConn bounds the calls in flight on one connection, of
	// every kind (status and log streams too).
	maxStreamsPerConn = 1024
	// maxHeaderListSize bounds a call's headers: what a client sends is a
	// few hundred bytes.
	maxHeaderListSize = 1 << 20
)

// maxEcho is how much of a value a client sent an error quotes back.
const maxEcho = 200

// truncate shortens s to at most n bytes (on a rune boundary) for quoting
// it in an error or a log line, saying how long it was.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:cut], len(s))
}

func statusName(s jumpstarterv1.ExporterStatus) string {
	return strings.TrimPrefix(s.String(), "EXPORTER_STATUS_")
}

// streamWorkers is how many goroutines of a server serve its calls and
// streams (more start one goroutine each). A worker keeps the stack it
// grew: a call on a fresh goroutine spends a fifth of the exporter's CPU
// copying its stack as it grows through gRPC, the session and the host.
const streamWorkers = 16
