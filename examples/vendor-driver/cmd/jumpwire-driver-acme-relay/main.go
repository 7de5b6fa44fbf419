// Command jumpwire-driver-acme-relay is the jumpwire plugin binary serving the
// acme-relay driver. The exporter starts it; run by hand, it prints its
// versions with --version.
package main

import (
	relay "example.com/acme/relay-driver"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=1.2.3").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{relay.Type}})
}
