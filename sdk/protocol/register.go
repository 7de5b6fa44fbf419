package protocol

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RegisterService registers impl for desc on s, as the generated
// Register...Server functions do, with one difference: a request that does
// not decode (malformed protobuf, a string that is not UTF-8, a frame whose
// groups nest too deep) fails with INVALID_ARGUMENT and what was wrong,
// where grpc-go would answer INTERNAL, which tells a caller the fault is
// the server's.
func RegisterService(s grpc.ServiceRegistrar, desc *grpc.ServiceDesc, impl any) {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			return h(srv, ctx, func(v any) error { return decodeRequest(dec, v) }, in)
		}
		d.Methods[i] = m
	}
	d.Streams = make([]grpc.StreamDesc, len(desc.Streams))
	for i, sd := range desc.Streams {
		h := sd.Handler
		sd.Handler = func(srv any, ss grpc.ServerStream) error {
			return h(srv, decodingStream{ss})
		}
		d.Streams[i] = sd
	}
	s.RegisterService(&d, impl)
}

// decodeTarget carries a message to [Codec], which decodes into m and
// keeps the decoding's error in err instead of returning it: grpc-go
// answers an error of the codec with INTERNAL before the handler sees it.
type decodeTarget struct {
	m   any
	err error
}

// decodeRequest receives a message into v with recv and reports a message that
// does not decode as INVALID_ARGUMENT.
func decodeRequest(recv func(any) error, v any) error {
	t := &decodeTarget{m: v}
	err := recv(t)
	if t.err != nil {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("the request does not decode as %s: %v", typeName(v), t.err))
	}
	return err
}

// decodingStream is a server stream whose received messages that do not
// decode fail with INVALID_ARGUMENT.
type decodingStream struct{ grpc.ServerStream }

func (s decodingStream) RecvMsg(m any) error { return decodeRequest(s.ServerStream.RecvMsg, m) }

// typeName names a message's type for an error: its protobuf full name.
func typeName(v any) string {
	if _, ok := v.(*Frame); ok {
		return "a stream frame"
	}
	if m := message(v); m != nil {
		return string(m.ProtoReflect().Descriptor().FullName())
	}
	return fmt.Sprintf("%T", v)
}
