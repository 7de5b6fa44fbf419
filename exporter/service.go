package exporter

import (
	"context"
	"errors"
	"net"
	"strings"

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
func (e *Exporter) Serve(ctx context.Context, lis net.Listener, opts ...ServeOption) error {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	var sopts []grpc.ServerOption
	if o.tls != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(o.tls)))
	}
	if o.passphrase != nil {
		if *o.passphrase == "" {
			return errors.New("exporter: serve: the passphrase is empty")
		}
		a := newPassphraseAuth(*o.passphrase, e.logger.Named("auth"))
		sopts = append(sopts, grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream))
	}

	srv := e.newServer(lis, o.tls != nil, sopts...)
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
	err := srv.Serve(lis)
	select {
	case err := <-fatal:
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
	srv := grpc.NewServer(append(protocol.ServerOptions(link), opts...)...)
	jumpstarterv1.RegisterExporterServiceServer(srv, &service{e: e})
	jumpstarterv1.RegisterRouterServiceServer(srv, &router{e: e})
	if link&protocol.Unix != 0 {
		// Only on a unix socket, whose 0600 mode keeps it to the operator;
		// never over TCP.
		adminv1.RegisterAdminServer(srv, &admin{e: e})
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
		return nil, status.Errorf(codes.NotFound, "no driver instance with uuid %q", uuid)
	}
	if n.target != nil {
		n = n.target
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
	for v, err := range sess.StreamingCall(stream.Context(), n.uuid, req.Method, req.Args) {
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

func statusName(s jumpstarterv1.ExporterStatus) string {
	return strings.TrimPrefix(s.String(), "EXPORTER_STATUS_")
}
