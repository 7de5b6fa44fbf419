package storage

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// flushBuffers writes out and drops a block device's page cache
// (BLKFLSBUF): the next read comes from the medium, which a board (or a
// card reader on the other side of a mux) may have written meanwhile.
func flushBuffers(f *os.File) error {
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0); err != nil {
		return fmt.Errorf("flush the buffers of %s (BLKFLSBUF): %w", f.Name(), err)
	}
	return nil
}
