// Command jumpwire-driver-serial is the plugin binary serving the serial port driver.
package main

import (
	"github.com/jumpwire-dev/jumpwire/drivers/serial"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{serial.Type}})
}
