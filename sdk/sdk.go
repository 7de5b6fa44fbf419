// Package sdk is what a jumpwire driver is written against.
//
// A driver is a Go type that embeds [Base] and lists its methods with
// [Export] (unary and streaming calls) and [ExportStream] (byte streams).
// A plugin binary's main function hands its driver types to [Serve], which
// speaks the jumpwire plugin protocol to the exporter that launched it.
// Every configured driver instance runs in its own plugin process, so a
// driver that panics, leaks or crashes hurts only itself.
//
// Arguments and results are typed Go values. The SDK decodes each positional
// argument from its JSON value into the parameter's Go type, encodes results
// back (structs become JSON objects, honouring json tags) and maps returned
// errors to the status codes clients expect (see the error kinds below).
//
// The package sdktest runs a driver in-process over real gRPC, so a driver's
// tests need no exporter.
package sdk

import (
	plugin "github.com/hashicorp/go-plugin"
	"github.com/jumpwire-dev/jumpwire/internal/wire"
)

// Version is the version of this SDK. Plugins report it to the exporter.
const Version = "0.1.0"

// ProtocolVersion is the major version of the host <-> plugin protocol this
// SDK speaks. It is negotiated at the handshake; a host and a plugin with no
// major version in common refuse each other.
const ProtocolVersion = 1

// ProtocolMinor is the minor version of the protocol this SDK speaks. Within a
// major version, minor versions only add.
const ProtocolMinor = 0

// PluginName is the name under which a plugin binary serves its driver.
const PluginName = "driver"

// MethodHeader is the gRPC metadata key that names the method of a byte stream.
const MethodHeader = "jumpwire-method"

// Handshake is the go-plugin handshake both sides of the plugin protocol use.
// A binary started without it (e.g. by hand) explains that it is a plugin and
// exits.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "JUMPWIRE_PLUGIN",
	MagicCookieValue: "8d3c1f6e-jumpwire-driver",
}

// MaxMessageSize is the largest gRPC message either side of the plugin
// protocol accepts (the gRPC default of 4 MiB is too small for uploads).
const MaxMessageSize = wire.MaxMessageSize
