package client_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/jumpwire-dev/jumpwire/client"
)

// ExampleClient_Stream talks to a serial port through its byte stream: write a command, say that
// nothing more will come, and read what the device sends until it ends the stream. (The lab's
// serial port echoes.)
func ExampleClient_Stream() {
	sock, stop := startLab()
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
	serial, err := tree.Lookup("serial")
	if err != nil {
		log.Fatal(err)
	}

	s, err := c.Stream(ctx, serial.UUID, "connect")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := io.WriteString(s, "uname -a\n"); err != nil {
		log.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		log.Fatal(err)
	}
	out, err := io.ReadAll(s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", out)
	// Output:
	// "uname -a\n"
}
