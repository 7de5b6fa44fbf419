package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal pair, puts its slave side in raw mode
// and returns the master side (non-blocking, so reads and writes take
// deadlines and Close interrupts them) and the slave's path, /dev/pts/N.
func openPTY() (*os.File, string, error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("pty: open /dev/ptmx: %w", err)
	}
	slave, err := setupPTY(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, "", fmt.Errorf("pty: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), slave, nil
}

// setupPTY unlocks and names the slave of master and makes it raw.
func setupPTY(master int) (string, error) {
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return "", fmt.Errorf("unlock the terminal: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return "", fmt.Errorf("name the terminal: %w", err)
	}
	// On Linux the termios of a pseudo-terminal's master side are those of
	// its slave, so this makes the slave raw without opening it (opening and
	// closing it would hang it up until a client opens it).
	t, err := unix.IoctlGetTermios(master, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("read terminal settings: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(master, unix.TCSETS, t); err != nil {
		return "", fmt.Errorf("make the terminal raw: %w", err)
	}
	return fmt.Sprintf("/dev/pts/%d", n), nil
}

// link makes path a symbolic link to target, creating its directory and
// replacing a stale link left by an earlier run, but nothing else: a link to
// a terminal that exists belongs to a board that runs.
func link(target, path string) error {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("tty: %s exists and is not a symbolic link; remove it or choose another --tty path", path)
	case err == nil && stat(path) == nil:
		old, _ := os.Readlink(path)
		return fmt.Errorf("tty: %s is in use by another board (it links to %s); choose another --tty path", path, old)
	case err == nil:
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("tty: replace the old link: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("tty: %w", err)
	}
	if err := os.Symlink(target, path); err != nil {
		return fmt.Errorf("tty: %w", err)
	}
	return nil
}

func stat(path string) error { _, err := os.Stat(path); return err }

// unlink removes the link at path if it still points to target (another board
// may have taken the path over since).
func unlink(target, path string) {
	if got, err := os.Readlink(path); err == nil && got == target {
		_ = os.Remove(path)
	}
}
