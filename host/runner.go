package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/go-plugin/runner"
	"golang.org/x/sys/unix"
)

// processRunner runs one plugin binary for go-plugin. Unlike go-plugin's own
// runner it starts the plugin in its own process group (so stopping it stops
// whatever it started), asks the kernel to kill it when the exporter dies,
// keeps the exporter's stdin away from it, and records how it exited.
type processRunner struct {
	cmd    *exec.Cmd
	stdout *handshakeLine
	stderr io.ReadCloser
	pid    int

	exited   chan struct{} // closed once the process has exited (reaped or not)
	exitOnce sync.Once
	reason   string // how it exited; valid once exited is closed
	waitOne  sync.Once
	killOnce sync.Once
	// silentAtKill: when first killed, the process was alive and had
	// neither written a line to stdout nor closed it. Valid after Kill.
	silentAtKill bool
	waited       chan struct{} // closed once cmd.Wait has returned
	exitErr      error         // cmd.Wait's answer; valid once waited is closed
	status       *os.File      // /proc/PID/status, to see a kill before the exit; nil if unreadable

	// Concurrent calls share their reads of status (see dying).
	reads     atomic.Uint64 // reads of status begun
	readMu    sync.Mutex    // one read at a time; guards the two below
	lastRead  uint64        // the number of the last read done
	lastDying bool          // what it found

	// stderrDone is closed once go-plugin has read all of the plugin's
	// stderr: the process and any child that shared its stderr are gone.
	stderrDone chan struct{}

	// For an instance a Python zygote forks instead of a process started
	// here: the zygote, the class to serve, the environment.
	zyg   *zygote
	ztype string
	zenv  []string
}

// newZygoteRunner runs a Python driver instance of type typ forked by z.
func newZygoteRunner(z *zygote, typ string, env []string) *processRunner {
	return &processRunner{zyg: z, ztype: typ, zenv: env,
		exited: make(chan struct{}), waited: make(chan struct{}), stderrDone: make(chan struct{})}
}

func (r *processRunner) startForked(ctx context.Context) error {
	pid, out, errf, exit, err := r.zyg.spawn(ctx, r.ztype, r.zenv)
	if err != nil {
		return err
	}
	r.stdout, r.stderr = &handshakeLine{ReadCloser: out}, &endReader{ReadCloser: errf, end: r.stderrDone}
	r.pid = pid
	r.status, _ = os.Open("/proc/" + strconv.Itoa(r.pid) + "/status")
	go func() {
		e := <-exit
		_ = syscall.Kill(-r.pid, syscall.SIGKILL) // whatever it started goes with it
		r.markExited(e.reason())
	}()
	return nil
}

var _ runner.Runner = (*processRunner)(nil) // Interface guard

func newProcessRunner(binary string, args, env []string) (*processRunner, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGTERM, // the SDK then kills the plugin's whole group
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r := &processRunner{cmd: cmd, stdout: &handshakeLine{ReadCloser: stdout},
		exited: make(chan struct{}), waited: make(chan struct{}), stderrDone: make(chan struct{})}
	r.stderr = &endReader{ReadCloser: stderr, end: r.stderrDone}
	return r, nil
}

// endReader closes end when its reader reports the end of its data or
// fails.
type endReader struct {
	io.ReadCloser
	end  chan struct{}
	once sync.Once
}

func (r *endReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil {
		r.once.Do(func() { close(r.end) })
	}
	return n, err
}

// The parent-death signal fires when the thread that started the child exits,
// not when the process does. Go may retire idle threads, so every plugin is
// started from one goroutine locked to a thread that lives as long as the
// exporter.
var (
	launchOnce sync.Once
	launches   chan func()
)

func onLauncherThread(fn func()) {
	launchOnce.Do(func() {
		launches = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every plugin
			for f := range launches {
				f()
			}
		}()
	})
	done := make(chan struct{})
	launches <- func() { fn(); close(done) }
	<-done
}

func (r *processRunner) Start(ctx context.Context) error {
	if r.zyg != nil {
		return r.startForked(ctx)
	}
	var err error
	onLauncherThread(func() { err = r.cmd.Start() })
	if err != nil {
		return describeStartError(r.cmd.Path, err)
	}
	r.pid = r.cmd.Process.Pid
	r.status, _ = os.Open("/proc/" + strconv.Itoa(r.pid) + "/status")
	go r.watchExit()
	return nil
}

// describeStartError explains why a binary could not be executed.
func describeStartError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: no such file", path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s is not executable (check its mode: chmod +x)", path)
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Errorf("%s is not a program this machine can run (wrong architecture or not a binary)", path)
	}
	return fmt.Errorf("cannot run %s: %w", path, err)
}

func (r *processRunner) Wait(context.Context) error {
	if r.zyg != nil { // the zygote reaps it and reports its exit
		<-r.exited
		r.waitOne.Do(func() { close(r.waited) })
		if r.reason != "exited with status 0" {
			return errors.New(r.reason)
		}
		return nil
	}
	r.waitOne.Do(func() {
		r.exitErr = r.cmd.Wait()
		close(r.waited)
		r.markExited(waitReason(r.exitErr))
	})
	<-r.waited
	return r.exitErr
}

// markExited records the exit the first time it is seen.
func (r *processRunner) markExited(reason string) {
	r.exitOnce.Do(func() {
		r.reason = reason
		close(r.exited)
		if r.status != nil {
			_ = r.status.Close()
		}
	})
}

// dying reports whether the process has been sent SIGKILL (kill -9, the OOM
// killer) or has exited, though watchExit has not seen it exit yet: a
// process takes a while to die, and a call sent to it meanwhile would be
// lost with it.
//
// It is asked before every call, so concurrent askers share reads: the
// kernel renders the whole file for each and serializes the readers of one
// open file anyway. An asker takes the answer of a read that began after
// it asked, which saw everything a read of its own would have seen, or
// reads itself.
func (r *processRunner) dying() bool {
	if r.status == nil {
		return false
	}
	asked := r.reads.Load()
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if r.lastRead > asked {
		return r.lastDying
	}
	n := r.reads.Add(1)
	r.lastDying, r.lastRead = r.readDying(), n
	return r.lastDying
}

// readDying reads status once for dying.
func (r *processRunner) readDying() bool {
	var buf [4096]byte
	n, _ := r.status.ReadAt(buf[:], 0)
	if n == 0 {
		return true // reaped, or exit recorded and the file closed
	}
	field := func(name string) []byte {
		_, v, _ := bytes.Cut(buf[:n], []byte("\n"+name+":\t"))
		v, _, _ = bytes.Cut(v, []byte("\n"))
		return v
	}
	if st := field("State"); bytes.HasPrefix(st, []byte("Z")) || bytes.HasPrefix(st, []byte("X")) {
		return true
	}
	pending, _ := strconv.ParseUint(string(field("ShdPnd")), 16, 64)
	return pending&(1<<(syscall.SIGKILL-1)) != 0
}

// sigchldInfo is the start of Linux's siginfo_t as waitid fills it for a
// child: three ints, then the union, which is aligned as a pointer (so it
// starts at offset 16 on 64-bit systems and 12 on 32-bit ones such as
// linux/arm), whose SIGCHLD member begins with the pid, the uid and the
// status. The zero-length array gives the union its alignment on every
// GOARCH; x/sys's unix.Siginfo only has room for it (128 bytes).
type sigchldInfo struct {
	signo, errno, code int32
	_                  [0]uintptr
	pid                int32
	uid                uint32
	status             int32
}

// The si_code values of a child's exit.
const (
	cldExited = 1 // CLD_EXITED: si_status is the exit status
	cldKilled = 2 // CLD_KILLED: si_status is the signal
	cldDumped = 3 // CLD_DUMPED: likewise, with a core dump
)

// watchExit notices the plugin's exit as soon as it happens, without reaping
// it (go-plugin's Wait does that, but only once the plugin's pipes close,
// which a child the plugin started may keep open). The plugin's process
// group goes with it: whatever it started has lost its parent.
func (r *processRunner) watchExit() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, r.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Already reaped (Wait won the race): Wait reports the exit,
			// but the group must still go.
			_ = syscall.Kill(-r.pid, syscall.SIGKILL)
			return
		}
		break
	}
	child := (*sigchldInfo)(unsafe.Pointer(&info))
	code, st := child.code, child.status
	reason := "exited with status " + strconv.Itoa(int(st))
	if code == cldKilled || code == cldDumped {
		reason = "was killed by " + signalName(syscall.Signal(st))
	}
	_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	r.markExited(reason)
}

// waitReason says how the process ended from cmd.Wait's answer.
func waitReason(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by " + signalName(ws.Signal())
		}
		return "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}

// Kill kills the plugin and everything in its process group. The first
// kill records whether the plugin was still waiting silently (no line on
// stdout, stdout open, alive): go-plugin kills a plugin whose handshake did
// not come in time. A plugin that closed stdout without a handshake is
// given a moment to finish exiting, so that its own exit is what is
// reported.
func (r *processRunner) Kill(context.Context) error {
	if r.pid == 0 {
		return nil
	}
	r.killOnce.Do(func() {
		line, ended := r.stdout.seen()
		if line == "" && ended {
			r.exitedWithin(stderrGrace)
		}
		select {
		case <-r.exited:
		default:
			r.silentAtKill = line == "" && !ended
		}
	})
	err := syscall.Kill(-r.pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// exitedWithin reports whether the process exits within d (at once if it
// has exited already).
func (r *processRunner) exitedWithin(d time.Duration) bool {
	if r.pid == 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.exited:
		return true
	case <-t.C:
		return false
	}
}

// exitReason says how the process ended, for messages ("exited with status 3",
// "was killed by SIGKILL").
func (r *processRunner) exitReason() string {
	select {
	case <-r.exited:
		return r.reason
	default:
		return "still running"
	}
}

// stderrTail keeps the end of what a plugin wrote to stderr, so that a
// plugin that cannot start can be quoted saying why, and the first line of
// a Go panic or fatal error, so that a plugin that crashes can be too.
type stderrTail struct {
	mu    sync.Mutex
	buf   []byte
	line  []byte // the line being written, up to maxLine bytes
	crash string // the first line of a panic or fatal error, once seen
}

const (
	stderrTailSize = 4 << 10
	maxLine        = 1 << 10
)

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - stderrTailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	// A stack trace can be far longer than the tail, so the line that
	// starts it is kept apart as it goes by.
	for rest := p; t.crash == "" && len(rest) > 0; {
		chunk, after, complete := bytes.Cut(rest, []byte{'\n'})
		t.line = append(t.line, chunk[:min(len(chunk), maxLine-len(t.line))]...)
		rest = after
		if !complete {
			break
		}
		if line := strings.TrimSpace(string(t.line)); isCrashLine(line) {
			t.crash = cut(line)
		}
		t.line = t.line[:0]
	}
	return len(p), nil
}

// isCrashLine reports whether line starts the Go runtime's report of a crash.
func isCrashLine(line string) bool {
	return strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")
}

// crashWords returns the first line of a Go panic or fatal error the plugin
// wrote ("panic: index out of range"), or "".
func (t *stderrTail) crashWords() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.crash
}

// lastWords returns the line that best explains an exit: the first line of
// a Go panic or fatal error, else the last plain-text line (the SDK's own
// startup errors are plain text; its logs are JSON, collected elsewhere).
func (t *stderrTail) lastWords() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last string
	for line := range strings.Lines(string(t.buf)) {
		line = strings.TrimSpace(line)
		switch {
		case isCrashLine(line):
			return cut(line)
		case line != "" && !strings.HasPrefix(line, "{"):
			last = line
		}
	}
	return cut(last)
}

// cut shortens s for a message.
func cut(s string) string {
	const n = 300
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

// signalName names sig as operators know it ("SIGKILL").
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

func (r *processRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *processRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *processRunner) Name() string {
	if r.zyg != nil {
		return r.zyg.interpreter
	}
	return r.cmd.Path
}
func (r *processRunner) ID() string { return strconv.Itoa(r.pid) }

func (r *processRunner) Diagnose(context.Context) string {
	return fmt.Sprintf("%s did not answer as a jumpwire plugin: is it a driver built with the jumpwire sdk? "+
		"(a plugin must not print to stdout before its handshake)", r.Name())
}

func (r *processRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *processRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }
