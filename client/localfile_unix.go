//go:build unix

package client

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendFD sends msg with f's descriptor attached (SCM_RIGHTS).
func sendFD(c *net.UnixConn, msg []byte, f *os.File) error {
	_, _, err := c.WriteMsgUnix(msg, unix.UnixRights(int(f.Fd())), nil)
	return err
}
