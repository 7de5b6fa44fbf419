// Command jumpwire-driver-storage is the plugin binary serving the storage
// mux and flasher drivers.
package main

import (
	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{storage.Mux, storage.Flasher, storage.MuxFlasher}})
}
