// Command jumpwire-driver-sink is the plugin binary of the benchmarks' sink
// driver (see package sinkdriver).
package main

import (
	"github.com/jumpwire-dev/jumpwire/bench/internal/sinkdriver"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{Version: "0.0.0-bench", Drivers: []sdk.Type{sinkdriver.Type}})
}
