package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// A board's qemu does not run as a child of the power plugin but of a
// keeper: the plugin's own binary started again as a small process of its
// own session, which holds qemu's stdio and serves its console socket, and
// which lives as long as the exporter, not as long as the plugin. So a
// plugin that crashes, or is replaced by a new binary or config (a swap),
// leaves the board running, and its successor adopts it from the run record
// in the state directory. What ends the board:
//
//   - off(), or the session's end (Close): SIGTERM to qemu, then SIGKILL to
//     the keeper's process group;
//   - qemu exiting by itself: the keeper records how, and exits;
//   - the exporter's end, however it ends (SIGKILL included): the keeper
//     holds a pidfd of the exporter and kills its group, qemu with it, when
//     the exporter is gone; and qemu has the kernel kill it when its keeper
//     dies (parent-death signal).

// keeperEnv, in a process's environment, makes it a board's keeper (see
// KeeperMain); its value is the keeper's spec, JSON.
const keeperEnv = "JUMPWIRE_QEMU_KEEPER"

// keeperSpec is what a keeper runs.
type keeperSpec struct {
	Argv     []string `json:"argv"`
	StateDir string   `json:"state_dir"`
	Backlog  int      `json:"backlog"`
}

// keeperReady is the line a keeper writes on its stdout once qemu runs (or
// could not be started).
type keeperReady struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// exitRecord is how the board's last qemu ended, as its keeper saw it.
type exitRecord struct {
	Error  string `json:"error,omitempty"` // qemu's exit status, "" for a clean exit
	Stderr string `json:"stderr,omitempty"`
}

// runRecord describes the running board, for a successor plugin to adopt.
type runRecord struct {
	Owner       int            `json:"owner"` // the exporter's pid
	Keeper      int            `json:"keeper"`
	KeeperStart uint64         `json:"keeper_start"` // its start time (/proc/PID/stat), against pid reuse
	Qemu        int            `json:"qemu"`
	Accel       string         `json:"accel"`
	Ports       map[string]int `json:"ports,omitempty"`
}

func runRecordPath(dir string) string  { return filepath.Join(dir, "run.json") }
func exitRecordPath(dir string) string { return filepath.Join(dir, "qemu-exit.json") }
func keeperLogPath(dir string) string  { return filepath.Join(dir, "keeper.log") }

// ownerFD is the descriptor number of the exporter's pidfd in a keeper.
const ownerFD = 3

// owner is the process whose end ends the board: the exporter that
// started the plugin (see KeepWithParent); the process itself when the
// driver runs in it (tests).
var owner = os.Getpid()

// KeepWithParent makes boards end with this process's parent: a plugin
// binary, started by the exporter, calls it before serving.
func KeepWithParent() { owner = os.Getppid() }

// KeeperMain turns this process into a board's keeper when it was started
// as one, and then never returns. A binary that serves the qemu driver
// types (the plugin, a package's tests) calls it first thing.
func KeeperMain() {
	spec := os.Getenv(keeperEnv)
	if spec == "" {
		return
	}
	os.Exit(runKeeper(spec))
}

func runKeeper(specJSON string) int {
	// qemu's parent-death signal fires when the thread that started it
	// ends: start it from this one, locked for the keeper's whole life.
	runtime.LockOSThread()
	ready := func(r keeperReady) {
		b, _ := json.Marshal(r)
		_, _ = os.Stdout.Write(append(b, '\n'))
		os.Stdout.Close()
	}
	var spec keeperSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil || len(spec.Argv) == 0 {
		ready(keeperReady{Error: fmt.Sprintf("qemu keeper: bad spec %q: %v", specJSON, err)})
		return 2
	}
	go watchOwner(os.NewFile(ownerFD, "exporter pidfd"))

	logger := hclog.New(&hclog.LoggerOptions{Name: "qemu-keeper", Output: os.Stderr, Level: hclog.Info})
	console, err := listenConsole(consoleSocket(spec.StateDir), spec.Backlog, logger)
	if err != nil {
		ready(keeperReady{Error: err.Error()})
		return 1
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err == nil {
		var stdout io.ReadCloser
		if stdout, err = cmd.StdoutPipe(); err == nil {
			stderr := &tail{}
			cmd.Stderr = io.MultiWriter(stderr, os.Stderr)
			if err = cmd.Start(); err == nil {
				console.attach(stdin, stdout)
				ready(keeperReady{Pid: cmd.Process.Pid})
				werr := cmd.Wait()
				rec := exitRecord{Stderr: stderr.String()}
				if werr != nil {
					rec.Error = werr.Error()
				}
				b, _ := json.Marshal(rec)
				if err := writeFileAtomic(exitRecordPath(spec.StateDir), b); err != nil {
					logger.Error("could not record how qemu ended", "error", err)
				}
				// Whatever qemu started dies with it (the group is the keeper's).
				console.close()
				return 0
			}
		}
	}
	console.close()
	if errors.Is(err, exec.ErrNotFound) {
		err = fmt.Errorf("%s is not installed (on Debian: apt-get install qemu-system-x86 or qemu-system-arm)", spec.Argv[0])
	}
	ready(keeperReady{Error: err.Error()})
	return 1
}

// watchOwner kills the keeper's process group (qemu with it) once the
// exporter is gone: its pidfd polls readable when it has exited.
func watchOwner(f *os.File) {
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == nil || !errors.Is(err, unix.EINTR) {
			break
		}
	}
	_ = syscall.Kill(0, syscall.SIGKILL)
	os.Exit(3)
}

// startKeeper starts the keeper of a new qemu and waits until qemu runs.
func startKeeper(spec keeperSpec) (cmd *exec.Cmd, qemuPid int, err error) {
	pidfd, err := ownerPidfd()
	if err != nil {
		return nil, 0, err
	}
	defer pidfd.Close()
	specJSON, _ := json.Marshal(spec)
	logf, err := os.OpenFile(keeperLogPath(spec.StateDir), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("qemu: the keeper's log: %w", err)
	}
	defer logf.Close()
	// /proc/self/exe is the binary this process runs even after a reload
	// replaced or removed its file; the name is what ps shows.
	cmd = exec.Command("/proc/self/exe")
	cmd.Args = []string{"jumpwire-qemu-keeper", spec.StateDir}
	// GORACE: a binary built with -race (the tests) would linger a second
	// at its exit, and a board would seem on a second after qemu ended.
	cmd.Env = []string{keeperEnv + "=" + string(specJSON), "PATH=" + os.Getenv("PATH"), "GORACE=atexit_sleep_ms=0"}
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{pidfd} // fd 3 (ownerFD)
	// A session of its own: stopping the plugin's process group (a swap, a
	// crash) does not reach the board.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, fmt.Errorf("qemu: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("qemu: start the board's keeper: %w", err)
	}
	line := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(out, 64<<10))
		line <- b
	}()
	var b []byte
	select {
	case b = <-line:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, 0, errors.New("qemu: the board's keeper did not start qemu within 30s")
	}
	var r keeperReady
	if err := json.Unmarshal(b, &r); err != nil || (r.Pid == 0 && r.Error == "") {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		log, _ := os.ReadFile(keeperLogPath(spec.StateDir))
		return nil, 0, fmt.Errorf("qemu: the board's keeper failed (%q): %s", b, lastLine(string(log)))
	}
	if r.Error != "" {
		_ = cmd.Wait()
		return nil, 0, errors.New(r.Error)
	}
	return cmd, r.Pid, nil
}

// ownerPidfd opens a pidfd of the owner (see owner), checking that it is
// still this process's parent when that is what it is: a pid read before
// the exporter died could name another process by now.
func ownerPidfd() (*os.File, error) {
	fd, err := unix.PidfdOpen(owner, 0)
	if err != nil {
		return nil, fmt.Errorf("qemu: a pidfd of the exporter (pid %d), which the board's keeper watches: %w", owner, err)
	}
	if owner != os.Getpid() && os.Getppid() != owner {
		unix.Close(fd)
		return nil, fmt.Errorf("qemu: the exporter (pid %d) that started this plugin is gone", owner)
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// startTime is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat), which with its pid names one process for good.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64) // field 22 overall; fields[0] is field 3
}

// waitPidfd returns a channel closed once the process of the pidfd f has
// exited; it closes f then.
func waitPidfd(f *os.File) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}()
	return done
}

// openKeeper opens a pidfd of the keeper rec names, if that process still
// runs (the same pid and start time).
func openKeeper(rec runRecord) (*os.File, bool) {
	fd, err := unix.PidfdOpen(rec.Keeper, 0)
	if err != nil {
		return nil, false
	}
	// Checked after opening: the pidfd holds the process the start time names.
	if st, err := startTime(rec.Keeper); err != nil || st != rec.KeeperStart {
		unix.Close(fd)
		return nil, false
	}
	return os.NewFile(uintptr(fd), "keeper pidfd"), true
}

func readRunRecord(dir string) (runRecord, bool) {
	b, err := os.ReadFile(runRecordPath(dir))
	if err != nil {
		return runRecord{}, false
	}
	var r runRecord
	if json.Unmarshal(b, &r) != nil || r.Keeper <= 0 {
		return runRecord{}, false
	}
	return r, true
}

func readExitRecord(dir string) (exitRecord, bool) {
	b, err := os.ReadFile(exitRecordPath(dir))
	if err != nil {
		return exitRecord{}, false
	}
	var r exitRecord
	return r, json.Unmarshal(b, &r) == nil
}

// writeFileAtomic replaces path with b.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
