package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

// Example powers on the device under test and reads its power supply. Inside `jw shell`, pass ""
// as the target: Dial then uses JUMPSTARTER_HOST.
func Example() {
	sock, stop := startLab() // a stand-in for the exporter that `jw shell` starts
	defer stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	tree, err := c.Tree(ctx)
	if err != nil {
		log.Fatal(err)
	}
	d, err := tree.Lookup("dut.power")
	if err != nil {
		log.Fatal(err)
	}
	power := client.NewPower(c, d)
	if err := power.On(ctx); err != nil {
		log.Fatal(err)
	}
	for r, err := range power.Read(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%.1f V, %.1f A\n", r.Voltage, r.Current)
	}

	// Any method, by name, with JSON-like arguments:
	serial, _ := tree.Lookup("serial")
	if _, err := c.Call(ctx, serial.UUID, "set_dtr", true); err != nil {
		log.Fatal(err)
	}
	_, err = c.Call(ctx, serial.UUID, "set_dtr")
	fmt.Println(err)
	// Output:
	// 5.0 V, 2.0 A
	// 5.0 V, 2.5 A
	// serial.set_dtr: invalid argument: set_dtr takes 1 argument, got 0
}

func startLab() (string, func()) {
	dir, err := os.MkdirTemp("", "jw-example")
	if err != nil {
		log.Fatal(err)
	}
	sock := filepath.Join(dir, "exporter.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	stop := fakeexporter.Lab().Serve(lis)
	return sock, func() {
		stop()
		_ = os.RemoveAll(dir)
	}
}
