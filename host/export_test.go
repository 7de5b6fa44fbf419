package host

import "time"

// SetExitGrace sets how long a call whose connection broke waits for the
// process's exit to be noticed, and returns a function that restores it.
// Only tests that do not run in parallel may call it.
func SetExitGrace(d time.Duration) (restore func()) {
	old := exitGrace
	exitGrace = d
	return func() { exitGrace = old }
}
