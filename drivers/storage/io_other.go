//go:build !linux

package storage

import "os"

// flushBuffers has nothing to do where the kernel offers no BLKFLSBUF: the
// fsync before it is what makes a write durable.
func flushBuffers(*os.File) error { return nil }

// writeback has no portable form: the fsync at the end writes it all.
func writeback(*os.File, int64, int64) {}
