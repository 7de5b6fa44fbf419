package protocol

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
)

// MaxMessageSize is the largest message any hop sends or accepts.
const MaxMessageSize = 64 << 20

// A Link says what a connection runs over, which decides some of its
// transport settings. Links combine: the plugin's is Unix|TLS.
type Link int

const (
	// Unix is a unix socket. grpc-go starts a flow-control window at 64 KiB
	// and grows it by estimating the bandwidth-delay product with pings; on
	// a unix socket the delay is so short that the estimate stays near the
	// start, and a byte stream waits for a window update every few frames.
	// A unix link gets fixed windows instead (which turns the estimate off):
	// 1 MiB per stream and 4 MiB per connection, which is what a slow reader
	// lets pile up at most. Network links keep the estimate, which follows
	// the round trip of a remote client, where a fixed 1 MiB window would
	// cap a stream at 1 MiB per round trip.
	Unix Link = 1 << iota
	// TLS is a connection under TLS (the plugin's, with go-plugin's
	// AutoMTLS; the exporter's TCP listener). crypto/tls keeps each
	// decrypted record in a buffer of its own, so gRPC's read buffer in
	// front of it would copy every byte once more: it is turned off.
	TLS

	// TCP is a connection over the network without TLS.
	TCP Link = 0
)

// Windows of a unix link (see [Unix]).
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// ServerOptions are the options of every jumpwire gRPC server: the codec,
// the pool, message limits, and what its link needs.
func ServerOptions(l Link) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(Codec),
		experimental.BufferPool(Shared),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
	}
	if l&Unix != 0 {
		opts = append(opts, grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow))
	}
	if l&TLS != 0 {
		opts = append(opts, grpc.ReadBufferSize(0))
	}
	return opts
}

// DialOptions are the options of every jumpwire gRPC client connection,
// matching [ServerOptions].
func DialOptions(l Link) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(Codec),
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
		experimental.WithBufferPool(Shared),
	}
	if l&Unix != 0 {
		opts = append(opts, grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(connWindow))
	}
	if l&TLS != 0 {
		opts = append(opts, grpc.WithReadBufferSize(0))
	}
	return opts
}
