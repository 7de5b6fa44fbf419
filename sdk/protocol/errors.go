package protocol

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// DriverErrorTrailer is the trailer key a plugin sets, with the value "1",
// on every error status its handlers return (minor version 2 on). It tells
// the host that the status is the plugin's own answer, so the process is
// alive: a driver that says UNAVAILABLE (its device cannot be reached) is
// passed on to the client at once, while an UNAVAILABLE without the mark
// comes from the transport, and the host waits a moment for the process's
// exit to say how it died. A driver written without the Go SDK sets it with
// its gRPC library's trailing metadata.
const DriverErrorTrailer = "jumpwire-driver-error"

var driverErrorMark = metadata.Pairs(DriverErrorTrailer, "1")

// MarkErrors returns the server options that set [DriverErrorTrailer] on
// every error a handler of the server returns.
func MarkErrors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			if err != nil {
				_ = grpc.SetTrailer(ctx, driverErrorMark)
			}
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			err := h(srv, ss)
			if err != nil {
				ss.SetTrailer(driverErrorMark)
			}
			return err
		}),
	}
}

// DriverError reports whether trailer, the trailing metadata of a failed
// call, carries [DriverErrorTrailer]: the plugin itself answered with the
// error.
func DriverError(trailer metadata.MD) bool {
	v := trailer.Get(DriverErrorTrailer)
	return len(v) > 0 && v[0] == "1"
}
