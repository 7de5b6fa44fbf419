// Command jumpwire-driver-qemu is the plugin binary serving the QEMU virtual
// board's driver types.
package main

import (
	"github.com/jumpwire-dev/jumpwire/drivers/qemu"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	qemu.KeeperMain() // a board's keeper is this binary started again
	qemu.KeepWithParent()
	sdk.Serve(sdk.Plugin{Version: version, Drivers: []sdk.Type{qemu.Board, qemu.Power, qemu.Console, qemu.Forwarded}})
}
