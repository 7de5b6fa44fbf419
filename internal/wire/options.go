package wire

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
)

// MaxMessageSize is the largest message any hop sends or accepts.
const MaxMessageSize = 64 << 20

// Flow-control windows of every hop. grpc-go starts at 64 KiB and grows
// windows by estimating the bandwidth-delay product with pings; on a unix
// socket the delay is so short that the estimate stays near the start, and
// a byte stream then waits for a window update every few frames. A fixed
// window (which turns the estimate off) keeps a hop busy. It bounds what a
// slow reader lets pile up: at most one window per stream, and one
// connection window per connection, on each hop.
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// ServerOptions are the options of every jumpwire gRPC server: the codec,
// the pool, message limits and flow-control windows.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(Codec),
		experimental.BufferPool(Shared),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
	}
}

// DialOptions are the options of every jumpwire gRPC client connection,
// matching [ServerOptions].
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(Codec),
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
		experimental.WithBufferPool(Shared),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
	}
}

// TLSServerOptions are [ServerOptions] for a server whose connections are
// TLS (the plugin's, with go-plugin's AutoMTLS; the exporter's TCP
// listener). crypto/tls keeps each decrypted record in a buffer of its own,
// so gRPC's read buffer in front of it would copy every byte once more:
// it is turned off.
func TLSServerOptions() []grpc.ServerOption {
	return append(ServerOptions(), grpc.ReadBufferSize(0))
}

// TLSDialOptions are [DialOptions] for a connection over TLS, without
// gRPC's read buffer for the reason [TLSServerOptions] gives.
func TLSDialOptions() []grpc.DialOption {
	return append(DialOptions(), grpc.WithReadBufferSize(0))
}
