// Command jumpwire-driver-power is the plugin binary serving the mock power driver.
package main

import (
	"github.com/jumpwire-dev/jumpwire/drivers/power"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{power.Type}})
}
