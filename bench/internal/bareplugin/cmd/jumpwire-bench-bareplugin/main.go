// Command jumpwire-bench-bareplugin is the bare go-plugin plugin the
// benchmarks use as their baseline (see package bareplugin).
package main

import "github.com/jumpwire-dev/jumpwire/bench/internal/bareplugin"

func main() { bareplugin.Serve() }
