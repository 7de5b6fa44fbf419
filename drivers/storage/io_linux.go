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

// writeback starts writing out [off, off+n) of f without waiting for it
// (sync_file_range with SYNC_FILE_RANGE_WRITE). A flash calls it behind
// each write, so the disk works while the image still streams in, and
// the fsync at the end finds little left to do: otherwise a machine with
// a large page cache keeps a whole image dirty until that fsync, and the
// flash takes the disk's full write time on top of the transfer's. It is
// advice: where it fails (a file system without it), the fsync does it all.
func writeback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
