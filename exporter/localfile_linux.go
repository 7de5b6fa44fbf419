//go:build linux

package exporter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// serveLocalFiles serves the local file socket next to the unix socket
// sock until the returned stop (nil when there is no socket) closes and
// removes it. The socket has the main
// socket's mode (0600, the exporter's user only), and a peer of another
// user is refused besides: the file descriptor it passes is the proof that
// it may read the file, and only a peer that may use the exporter at all
// may hand one over. The exporter never opens a path a client names.
func (e *Exporter) serveLocalFiles(sock string) (stop func()) {
	path := sock + LocalFileSocketSuffix
	log := e.logger.Named("localfile")
	if err := removeStaleSocket(path); err != nil {
		log.Warn("no local file socket; local clients stream their images", "error", err)
		return nil
	}
	old := syscall.Umask(0o177)
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		log.Warn("no local file socket; local clients stream their images", "error", err)
		return nil
	}
	lis.SetUnlinkOnClose(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.AcceptUnix()
			if err != nil {
				return
			}
			go e.receiveLocalFile(c, log)
		}
	}()
	return func() {
		lis.Close()
		<-done
	}
}

// receiveLocalFile takes one file from c and answers "ok" or why not.
func (e *Exporter) receiveLocalFile(c *net.UnixConn, log hclog.Logger) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	token, f, err := readLocalFile(c)
	if err == nil {
		err = e.localFiles.put(token, f)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		log.Debug("refused a local file", "error", err)
		_, _ = c.Write([]byte("error: " + err.Error() + "\n"))
		return
	}
	_, _ = c.Write([]byte("ok\n"))
}

// readLocalFile reads a token and one file descriptor from c, checking
// that the peer is this exporter's user and that the file is a regular
// file open for reading.
func readLocalFile(c *net.UnixConn) (string, *os.File, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return "", nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return "", nil, err
	}
	if credErr != nil {
		return "", nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	if int(cred.Uid) != os.Getuid() {
		return "", nil, fmt.Errorf("uid %d is not the exporter's user", cred.Uid)
	}
	buf := make([]byte, maxTokenLen+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return "", nil, err
	}
	var fds []int
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return "", nil, fmt.Errorf("want one file descriptor, got %d", len(fds))
	}
	f := os.NewFile(uintptr(fds[0]), "local file")
	token := string(buf[:n])
	if !tokenPattern.MatchString(token) {
		f.Close()
		return "", nil, errors.New("the token is not 16 to 64 letters, digits or dashes")
	}
	if err := checkReadable(f); err != nil {
		f.Close()
		return "", nil, err
	}
	return token, f, nil
}

// checkReadable accepts a regular file open for reading.
func checkReadable(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("the file is not a regular file (%s)", st.Mode().Type())
	}
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if m := fl & unix.O_ACCMODE; m != unix.O_RDONLY && m != unix.O_RDWR {
		return errors.New("the file is not open for reading")
	}
	return nil
}
