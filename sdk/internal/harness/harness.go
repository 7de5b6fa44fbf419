// Package harness lets sdktest reach the SDK's plugin-protocol server
// without making it part of the SDK's public surface: package sdk sets
// NewServer when it is initialised.
package harness

import (
	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// NewServer returns the plugin-protocol server for a plugin (an sdk.Plugin),
// to be served on a gRPC server made with protocol.ServerOptions(protocol.Unix).
var NewServer func(plugin any, logger hclog.Logger) (pluginv1.DriverServer, error)
