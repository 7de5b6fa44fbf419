package exporter

import (
	"context"
	"iter"

	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Each configured instance runs in a process of its own, so a driver whose
// config gives it children (upstream's UbootConsole needs a power and a
// serial child; a Pi Pico flasher drives its bootsel and run lines) learns
// of them in its Configure request and calls them back through the
// exporter: the host serves the plugin a Children service on a private
// socket, and childRouter carries each call to the child's own process, Go
// or Python, as a client's call would go.

// childrenOf describes the configured children of n for its driver; refs
// stand for the instance they name. byPath indexes the tree's nodes.
func childrenOf(n *node, byPath map[string]*node) ([]*pluginv1.Child, *config.Error) {
	var out []*pluginv1.Child
	for _, ci := range n.inst.Children {
		cn := byPath[ci.Path]
		if cn == nil {
			continue
		}
		src := cn
		if cn.target != nil {
			src = cn.target
		}
		c := &pluginv1.Child{Name: ci.Name, Uuid: src.uuid, Path: src.path()}
		if src.isDriver() {
			c.Type = src.dtype.GetName()
			c.Methods = src.dtype.GetMethods()
			cfg, serr := structpb.NewStruct(src.inst.Config)
			if serr != nil {
				return nil, src.inst.KeyError("config", serr.Error())
			}
			c.Config = cfg
		}
		if src.inst != nil {
			grand, err := childrenOf(src, byPath)
			if err != nil {
				return nil, err
			}
			c.Children = grand
		}
		out = append(out, c)
	}
	return out, nil
}

// childRouter routes a driver's calls to its children (host.ChildRouter)
// through the exporter's tree and current session, as client calls go.
type childRouter struct{ e *Exporter }

func (r childRouter) target(ctx context.Context, uuid string) (context.Context, string, sessionCalls, error) {
	_, byUUID := r.e.tree()
	n, ok := byUUID[uuid]
	if !ok {
		return nil, "", nil, status.Errorf(codes.NotFound, "no driver instance with uuid %q", uuid)
	}
	if n.target != nil {
		n = n.target
	}
	if n.owner == nil && !n.isDriver() {
		return nil, "", nil, status.Errorf(codes.NotFound, "%s is a composite and has no methods", n.path())
	}
	sess := r.e.Session()
	if sess == nil {
		// The first session starts every driver in parallel and is set only
		// once all answered their configs.
		return nil, "", nil, status.Errorf(codes.FailedPrecondition,
			"%s is not serving yet: a driver can call its children once every driver has started, "+
				"not while it is being configured", n.path())
	}
	ctx, n = route(ctx, n)
	return ctx, n.uuid, sess, nil
}

// sessionCalls is what childRouter needs of a session.
type sessionCalls interface {
	Call(ctx context.Context, uuid, method string, args []*structpb.Value) (*structpb.Value, error)
	StreamingCall(ctx context.Context, uuid, method string, args []*structpb.Value) iter.Seq2[*structpb.Value, error]
	Stream(ctx context.Context, uuid, method string) (pluginv1.Driver_StreamClient, func(error) error, func(), error)
}

func (r childRouter) Call(ctx context.Context, uuid, method string, args []*structpb.Value) (*structpb.Value, error) {
	ctx, id, sess, err := r.target(ctx, uuid)
	if err != nil {
		return nil, err
	}
	return sess.Call(ctx, id, method, args)
}

func (r childRouter) StreamingCall(ctx context.Context, uuid, method string, args []*structpb.Value) iter.Seq2[*structpb.Value, error] {
	ctx, id, sess, err := r.target(ctx, uuid)
	if err != nil {
		return func(yield func(*structpb.Value, error) bool) { yield(nil, err) }
	}
	return sess.StreamingCall(ctx, id, method, args)
}

func (r childRouter) Stream(ctx context.Context, uuid, method string) (pluginv1.Driver_StreamClient, func(error) error, func(), error) {
	ctx, id, sess, err := r.target(ctx, uuid)
	if err != nil {
		return nil, nil, nil, err
	}
	return sess.Stream(ctx, id, method)
}
