// Command jumpwire-bench-relay is the floor of the DriverCall benchmark's
// concurrent run: a raw two-hop gRPC relay in front of the bare plugin.
//
//	jumpwire-bench-relay SOCKET BAREPLUGIN
package main

import (
	"fmt"
	"os"

	"github.com/jumpwire-dev/jumpwire/bench/internal/bareplugin"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: jumpwire-bench-relay SOCKET BAREPLUGIN")
		os.Exit(2)
	}
	if err := bareplugin.ServeRelay(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
