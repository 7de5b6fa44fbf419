package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/internal/grpcerr"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// ChildRouter carries the calls a driver makes to its configured children
// (Spec.Children) to the instances that serve them. The exporter provides
// it: it knows the tree (refs, children a driver made) and the session.
type ChildRouter interface {
	Call(ctx context.Context, uuid, method string, args []*structpb.Value) (*structpb.Value, error)
	StreamingCall(ctx context.Context, uuid, method string, args []*structpb.Value) iter.Seq2[*structpb.Value, error]
	Stream(ctx context.Context, uuid, method string) (st pluginv1.Driver_StreamClient, explain func(error) error, release func(), err error)
}

// Metadata keys of the Children service.
const (
	// ChildHeader names, by uuid, the child a call on the Children service is for.
	ChildHeader = "jumpwire-child"
	// childrenMinor is the protocol minor version from which a plugin is
	// offered the Children service.
	childrenMinor = 4
)

// childrenServer serves the Children service to one plugin process: only
// that process may connect (its pid, by the socket's peer credentials), and
// it may reach only the children its config gave it.
type childrenServer struct {
	pluginv1.UnimplementedChildrenServer
	router ChildRouter
	parent string            // the instance's path, for messages
	paths  map[string]string // the children it may call: uuid -> the path it knows them by
	logger hclog.Logger

	dir  string
	srv  *grpc.Server
	once sync.Once
}

// serveChildren listens on a unix socket in a new private directory and
// serves the Children service for spec's children to the process pid.
func serveChildren(spec Spec, pid func() int, router ChildRouter, logger hclog.Logger) (*childrenServer, string, error) {
	dir, err := os.MkdirTemp("", "jumpwire-children-") // mode 0700
	if err != nil {
		return nil, "", fmt.Errorf("host: children socket for %s: %w", spec.Path, err)
	}
	sock := filepath.Join(dir, "children.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", fmt.Errorf("host: children socket for %s: %w", spec.Path, err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cs := &childrenServer{router: router, parent: spec.Path, paths: map[string]string{}, logger: logger, dir: dir}
	var add func(prefix string, list []*pluginv1.Child)
	add = func(prefix string, list []*pluginv1.Child) {
		for _, c := range list {
			p := prefix + c.GetName()
			if c.GetUuid() != "" {
				cs.paths[c.GetUuid()] = p
			}
			add(p+".", c.GetChildren())
		}
	}
	add("", spec.Children)
	opts := append(protocol.ServerOptions(protocol.Unix), grpc.Creds(protocol.PeerCredentials(
		protocol.ExpectPID("plugin process of "+spec.Path, pid),
		func(err error) {
			logger.Warn("refused a connection to the children socket", "instance", spec.Path, "error", err)
		})))
	cs.srv = grpc.NewServer(opts...)
	pluginv1.RegisterChildrenServer(cs.srv, cs)
	go func() { _ = cs.srv.Serve(lis) }()
	return cs, sock, nil
}

// stop ends the service and removes its socket. Calls still in flight are
// cancelled: the process they came from is gone or being replaced.
func (cs *childrenServer) stop() {
	if cs == nil {
		return
	}
	cs.once.Do(func() {
		cs.srv.Stop()
		_ = os.RemoveAll(cs.dir)
	})
}

// child finds the child a request names.
func (cs *childrenServer) child(ctx context.Context) (uuid, path string, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(ChildHeader)
	if len(v) == 0 {
		return "", "", status.Errorf(codes.InvalidArgument, "a call to a child must name it in the %s metadata", ChildHeader)
	}
	p, ok := cs.paths[v[0]]
	if !ok {
		return "", "", status.Errorf(codes.NotFound, "%s has no configured child with uuid %q", cs.parent, v[0])
	}
	return v[0], p, nil
}

// explain adds the child's name to an error, keeping its code.
func (cs *childrenServer) explain(path string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); !ok && !errors.Is(err, context.Canceled) {
		err = status.Error(codes.Unknown, err.Error())
	}
	return grpcerr.Wrap(err, "child %s of %s", path, cs.parent)
}

func (cs *childrenServer) Call(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.CallResponse, error) {
	uuid, path, err := cs.child(ctx)
	if err != nil {
		return nil, err
	}
	v, err := cs.router.Call(ctx, uuid, req.GetMethod(), req.GetArgs())
	if err != nil {
		return nil, cs.explain(path, err)
	}
	return &pluginv1.CallResponse{Result: v}, nil
}

func (cs *childrenServer) StreamingCall(req *pluginv1.CallRequest, out pluginv1.Children_StreamingCallServer) error {
	uuid, path, err := cs.child(out.Context())
	if err != nil {
		return err
	}
	for v, err := range cs.router.StreamingCall(out.Context(), uuid, req.GetMethod(), req.GetArgs()) {
		if err != nil {
			return cs.explain(path, err)
		}
		if err := out.Send(&pluginv1.CallResponse{Result: v}); err != nil {
			return err
		}
	}
	return nil
}

func (cs *childrenServer) Stream(ps pluginv1.Children_StreamServer) error {
	ctx := ps.Context()
	uuid, path, err := cs.child(ctx)
	if err != nil {
		return err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var method string
	if v := md.Get(protocol.MethodHeader); len(v) > 0 {
		method = v[0]
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, explain, release, err := cs.router.Stream(ctx, uuid, method)
	if err != nil {
		return cs.explain(path, err)
	}
	defer release()
	// The child answers with its headers once the method exists.
	if _, err := st.Header(); err != nil {
		return cs.explain(path, explain(err))
	}
	if err := ps.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	go func() { // the parent's frames to the child, until it half-closes
		defer func() { _ = st.CloseSend() }()
		for {
			f := new(protocol.Frame)
			if err := ps.RecvMsg(f); err != nil {
				return
			}
			err := st.SendMsg(f)
			f.Free()
			if err != nil {
				return
			}
		}
	}()
	for { // the child's frames to the parent, until the child ends the stream
		f := new(protocol.Frame)
		if err := st.RecvMsg(f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return cs.explain(path, explain(err))
		}
		err := ps.SendMsg(f)
		f.Free()
		if err != nil {
			return err
		}
	}
}
