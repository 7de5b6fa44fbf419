//go:build !linux

package plugins

import (
	"io"
	"os"
)

// fileKey tells whether a file may have changed since it was hashed.
type fileKey struct {
	size  int64
	mtime int64
}

func keyOf(fi os.FileInfo) fileKey { return fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()} }

func checkPrivate(string) error { return nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func lockDir(string) (io.Closer, error) { return nopCloser{}, nil }

// unheld: without locks, another exporter's directory cannot be told from a
// stale one, so none is removed.
func unheld(string) bool { return false }
