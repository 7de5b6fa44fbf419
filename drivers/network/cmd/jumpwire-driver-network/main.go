// Command jumpwire-driver-network is the plugin binary serving the network
// drivers: tcp, udp and unix.
package main

import (
	"github.com/jumpwire-dev/jumpwire/drivers/network"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{network.TCP, network.UDP, network.Unix}})
}
