//go:build !unix

package client

import (
	"errors"
	"net"
	"os"
)

// sendFD cannot pass a descriptor on this system: the caller streams.
func sendFD(*net.UnixConn, []byte, *os.File) error {
	return errors.New("passing a file descriptor is not supported on this system")
}
