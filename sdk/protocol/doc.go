// Package protocol is the contract between a jumpwire exporter (the host)
// and a driver plugin process: everything both sides of the process
// boundary share, and nothing else.
//
// It holds the go-plugin handshake ([Handshake]) and the protocol's
// versions, the metadata keys of byte streams, the message limits, the
// peer-credential check that authenticates both ends of the plugin's unix
// socket ([PeerCredentials]), and how bytes move on every gRPC hop of
// jumpwire: the buffer pool, the codec, the transport settings, and
// [Frame], a byte-stream frame kept in gRPC's own buffers so that it
// crosses a hop without being copied. The generated plugin/v1 service is in
// the subpackage pluginv1.
//
// A driver author never needs this package: package sdk serves it. The
// exporter imports it and never the driver-facing sdk package.
package protocol
