// Command jumpwire-driver-shell is the plugin binary serving the shell driver.
package main

import (
	"github.com/jumpwire-dev/jumpwire/drivers/shell"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{shell.Type}})
}
