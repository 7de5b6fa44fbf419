// Command hang is a test plugin that never answers the handshake. It exits
// when the process that started it goes away, so a broken test leaves
// nothing behind.
package main

import (
	"os"
	"time"
)

func main() {
	ppid := os.Getppid()
	for os.Getppid() == ppid {
		time.Sleep(100 * time.Millisecond)
	}
}
