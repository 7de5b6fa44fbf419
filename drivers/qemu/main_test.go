package qemu_test

import (
	"testing"

	"github.com/jumpwire-dev/jumpwire/drivers/qemu"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// TestMain fails the run when a goroutine of the driver outlives the tests.
func TestMain(m *testing.M) {
	qemu.KeeperMain() // the boards' keepers are this test binary started again
	testbin.MainCheckingLeaks(m, "github.com/jumpwire-dev/jumpwire/drivers/qemu")
}
