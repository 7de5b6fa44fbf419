// Package ptypair makes pairs of pseudo-terminals joined by socat, standing
// in for a serial cable in tests: a driver opens Port, the test plays the
// device on Peer.
package ptypair

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Pair is two pseudo-terminals joined by socat.
type Pair struct {
	// Port is the end a driver opens; Peer the end the test plays the device on.
	Port, Peer string

	cmd      *exec.Cmd
	stderr   chan struct{} // closed when socat's stderr reached EOF
	killOnce sync.Once
}

var ptyLine = regexp.MustCompile(`PTY is (\S+)`)

// Start starts `socat -d -d pty,raw,echo=0 pty,raw,echo=0` and waits until
// it links the two terminals it reports. socat is killed and reaped when the
// test ends. Without socat the test is skipped, saying so.
func Start(t testing.TB) *Pair {
	t.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat is not installed; these tests need it to make pseudo-terminal pairs (apt-get install socat)")
	}
	cmd := exec.Command(bin, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start socat: %v", err)
	}
	p := &Pair{cmd: cmd, stderr: make(chan struct{})}
	t.Cleanup(p.Kill)

	ready := make(chan []string, 1)
	go func() {
		defer close(p.stderr)
		out := ready
		var paths []string
		var log []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if out == nil {
				continue // keep draining so socat never blocks on a full pipe
			}
			log = append(log, line)
			if m := ptyLine.FindStringSubmatch(line); m != nil {
				paths = append(paths, m[1])
			}
			if strings.Contains(line, "starting data transfer loop") {
				out <- paths
				out = nil
			}
		}
		if out != nil {
			out <- append([]string{"socat exited before linking the terminals:"}, log...)
		}
	}()
	select {
	case paths := <-ready:
		if len(paths) != 2 {
			t.Fatalf("socat: expected two PTY paths, got: %s", strings.Join(paths, "\n"))
		}
		p.Port, p.Peer = paths[0], paths[1]
	case <-time.After(5 * time.Second):
		t.Fatal("socat did not report its terminals within 5s")
	}
	return p
}

// Kill stops socat and reaps it: both terminals hang up, like a cable pulled.
func (p *Pair) Kill() {
	p.killOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.stderr
		_ = p.cmd.Wait()
	})
}

// OpenPeer opens the device end. It is closed when the test ends.
func (p *Pair) OpenPeer(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(p.Peer, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the peer terminal: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
