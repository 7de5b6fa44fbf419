package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jumpwire-dev/jumpwire/host"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	pluginv1 "github.com/jumpwire-dev/jumpwire/proto/plugin/v1"
	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/session"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// service implements jumpstarter.v1 ExporterService for an Exporter.
type service struct {
	jumpstarterv1.UnimplementedExporterServiceServer
	e *Exporter
}

// Serve serves the jumpstarter.v1 API on lis until ctx is cancelled, then
// stops gracefully (in-flight calls are cancelled by the session's end when
// the caller Closes the exporter).
func (e *Exporter) Serve(ctx context.Context, lis net.Listener) error {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(sdk.MaxMessageSize),
		grpc.MaxSendMsgSize(sdk.MaxMessageSize),
	)
	jumpstarterv1.RegisterExporterServiceServer(srv, &service{e: e})
	jumpstarterv1.RegisterRouterServiceServer(srv, &router{e: e})
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

func (s *service) GetReport(context.Context, *emptypb.Empty) (*jumpstarterv1.GetReportResponse, error) {
	e := s.e
	sess := e.Session()
	resp := &jumpstarterv1.GetReportResponse{
		Uuid:   e.nodes[0].uuid,
		Labels: map[string]string{LabelName: e.cfg.Metadata.Name},
		Motd:   e.cfg.Motd,
	}
	for _, n := range e.nodes {
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
	n, ok := s.e.byUUID[uuid]
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
		return nil, status.Error(codes.Unknown, err.Error())
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

// Listen opens the exporter's listener. addr is "unix:///path", "unix:path"
// or a bare socket path. The socket is created with mode 0600; a stale socket
// left by an exporter that died is replaced, a live one is an error.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		path, _ = strings.CutPrefix(addr, "unix:")
	}
	if strings.Contains(path, "://") {
		return nil, fmt.Errorf("exporter: listen %q: only unix sockets are supported (unix:///path/to.sock)", addr)
	}
	if path == "" {
		return nil, fmt.Errorf("exporter: listen %q: no socket path", addr)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("exporter: listen: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("exporter: listen: another exporter is serving on %s", path)
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		_ = os.Remove(path)
	}
	old := syscall.Umask(0o177)
	lis, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("exporter: listen: %w", err)
	}
	return lis, nil
}
