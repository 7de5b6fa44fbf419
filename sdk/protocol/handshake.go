package protocol

import plugin "github.com/hashicorp/go-plugin"

// Version is the major version of the host <-> plugin protocol. It is
// negotiated at the go-plugin handshake; a host and a plugin with no major
// version in common refuse each other.
//
// Version 1 stays as it was when the plugin hop moved from go-plugin's
// AutoMTLS to peer credentials: a version 1 plugin built before that serves
// plain gRPC when the host does not ask for TLS, and the host checks its pid
// as it checks any plugin's.
const Version = 1

// Minor is the minor version of the protocol. Within a major version, minor
// versions only add. Minor 1 added resource streams ([ResourceHeader]);
// minor 2 named parameters and their defaults (Method.param_info);
// minor 3 marks the plugin's own errors ([DriverErrorTrailer]); minor 4
// tells a plugin of its instance's configured children
// (ConfigureRequest.children) and serves it the Children service to call
// them, sets CloseRequest.handover on a swap (a plugin that does not know
// it closes as before), and passes what a driver writes on a resource
// stream back to the client (a download), saying so with [HostMinorHeader].
// Minor 5 lets the host hand a byte stream's client data over as a local
// file ([LocalFileHeader]) instead of its bytes, to a plugin of minor 5 or
// later, which says it took the file with [LocalFileTakenHeader].
// Minor 6 lets a plugin offer a call socket (DescribeResponse.call_socket)
// on which it answers unary calls framed as CallFrame messages ([ReadCallFrame]);
// the host uses it whenever a plugin names one.
const Minor = 6

// PluginName is the name under which a plugin binary serves its driver.
const PluginName = "driver"

// MethodHeader is the gRPC metadata key that names the method of a byte
// stream opened on Driver.Stream.
const MethodHeader = "jumpwire-method"

// InstanceHeader is the gRPC metadata key with which the host addresses a
// child that a driver made itself (upstream's Dutlink makes its power,
// storage and console): its dotted path relative to the configured instance.
// It travels as CallFrame.instance on a call socket.
const InstanceHeader = "jumpwire-instance"

// ResourceHeader is the gRPC metadata key that names, by uuid, the client
// resource (a handle passed as a call argument) that a Driver.Stream
// carries: the host sends the client's upload on it, and (minor 4 on) passes
// what the driver sends back on it to the client, a download.
const ResourceHeader = "jumpwire-resource"

// HostMinorHeader is the gRPC metadata key with which the host tells, on
// every resource stream it opens, the minor version of this protocol it
// speaks (minor 4 on). A driver writes to a resource (a download) only when
// the host says 4 or more: an older host drops what the driver writes.
const HostMinorHeader = "jumpwire-host-minor"

// LocalFileHeader is the gRPC metadata key with which the host (minor 5 on)
// tells a plugin that a byte stream's client data is a local file, not
// frames: its value is a path the plugin can open for reading
// (/proc/<host pid>/fd/<n>: the host holds the file open while the stream
// lasts). The client sends no data on such a stream, only its half-close.
const LocalFileHeader = "jumpwire-local-file"

// LocalFileTakenHeader is the gRPC response header with which a plugin says
// it opened the file of [LocalFileHeader] and reads the stream's data from
// it. A plugin that does not send it (older, or it could not open the file)
// gets the file's bytes as frames from the host, as any other stream.
const LocalFileTakenHeader = "jumpwire-local-file-taken"

// MagicCookieKey and MagicCookieValue are the environment variable the host
// sets for a plugin it starts. A binary started without it (by hand, say)
// explains that it is a plugin and exits.
const (
	MagicCookieKey   = "JUMPWIRE_PLUGIN"
	MagicCookieValue = "8d3c1f6e-jumpwire-driver"
)

// Handshake returns the go-plugin handshake both sides of the plugin
// protocol use. Each call returns a fresh value, so no caller can change
// what another sees.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  Version,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}
