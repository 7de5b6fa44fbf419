package plugins

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileKey tells whether a file may have changed since it was hashed: a
// write changes its size or times, a replacement its inode.
type fileKey struct {
	size         int64
	mtime, ctime int64
	dev, ino     uint64
}

func keyOf(fi os.FileInfo) fileKey {
	k := fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ctime = st.Ctim.Nano()
		k.dev, k.ino = uint64(st.Dev), st.Ino //nolint:unconvert // Dev is uint32 on some platforms
	}
	return k
}

// checkPrivate refuses a runtime directory that others could write to: they
// could swap the copies in it.
func checkPrivate(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("plugins: runtime directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("plugins: runtime directory %s is not a directory", dir)
	}
	if int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("plugins: runtime directory %s is not private (owner uid %d, mode %v); "+
			"remove it, or set XDG_RUNTIME_DIR to a directory only you can write", dir, st.Uid, fi.Mode().Perm())
	}
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) == nil && sfs.Flags&unix.ST_NOEXEC != 0 {
		return fmt.Errorf("plugins: runtime directory %s is on a file system mounted noexec, where plugins cannot run; "+
			"set XDG_RUNTIME_DIR to a directory on another", dir)
	}
	return nil
}

// lockName is the lock file a catalog holds in its private directory.
const lockName = ".lock"

// lockDir takes the lock of a private directory; it is released by closing
// the result, or by the process's death.
func lockDir(dir string) (io.Closer, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// unheld reports whether no live catalog holds the private directory dir:
// nobody holds its lock, and it is older than a minute (its maker may be
// about to lock it).
func unheld(dir string) bool {
	fi, err := os.Stat(dir)
	if err != nil || time.Since(fi.ModTime()) < time.Minute {
		return false
	}
	f, err := os.Open(filepath.Join(dir, lockName))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
