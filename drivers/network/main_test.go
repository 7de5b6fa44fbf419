package network_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when a goroutine of the driver outlives the tests:
// every stream, pump and copy must end with what it serves.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := driverGoroutines(2 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of the driver left after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// driverGoroutines waits up to wait for the driver package's goroutines to
// end and returns the stacks of those that did not.
func driverGoroutines(wait time.Duration) string {
	const pkg = "github.com/jumpwire-dev/jumpwire/drivers/network."
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, pkg) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || !time.Now().Before(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
