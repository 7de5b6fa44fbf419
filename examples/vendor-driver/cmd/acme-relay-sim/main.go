// Command acme-relay-sim runs a simulated Acme relay board, for trying the
// driver without hardware:
//
//	acme-relay-sim --listen 127.0.0.1:5025
//
// It prints "listening on ADDR", then each command it receives as "> CMD",
// and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"example.com/acme/relay-driver/sim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5025", "TCP address to serve on (port 0 picks a free one)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := sim.Listen(*listen, sim.OnCommand(func(cmd string) { fmt.Printf("> %s\n", cmd) }))
	if err != nil {
		fmt.Fprintf(os.Stderr, "acme-relay-sim: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", b.Addr())
	<-ctx.Done()
	_ = b.Close()
}
