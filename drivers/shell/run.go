package shell

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// output is one message of a run: a chunk of stdout or stderr, or the end.
type output struct {
	stdout, stderr string
	done           bool
	code           int
}

// tuple is the output as upstream's client reads it.
func (o output) tuple() []any {
	if o.done {
		return []any{o.stdout, o.stderr, o.code}
	}
	return []any{o.stdout, o.stderr, nil}
}

// run is one command in its own process group.
type run struct {
	method  string
	argv    []string
	env     map[string]string
	dir     string
	timeout time.Duration
	grace   time.Duration
}

// chunk is what one pipe reader read.
type chunk struct {
	stderr bool
	data   []byte
	err    error // io.EOF or a read error: the pipe is done
}

// start runs the command and yields its output as it arrives, then its end.
// Breaking out of the loop, or ctx ending, kills the process group.
func (r *run) start(ctx context.Context) iter.Seq2[output, error] {
	return func(yield func(output, error) bool) {
		cmd := exec.Command(r.argv[0], r.argv[1:]...)
		cmd.Dir = r.dir
		cmd.Env = os.Environ()
		for k, v := range r.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		outR, outW, err := os.Pipe()
		if err != nil {
			yield(output{}, fmt.Errorf("pipe: %w", err))
			return
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			yield(output{}, fmt.Errorf("pipe: %w", err))
			return
		}
		cmd.Stdout, cmd.Stderr = outW, errW
		err = cmd.Start()
		outW.Close()
		errW.Close()
		if err != nil {
			outR.Close()
			errR.Close()
			yield(output{}, fmt.Errorf("start %s: %w", r.argv[0], err))
			return
		}
		pgid := cmd.Process.Pid
		chunks := make(chan chunk, 2)
		stop := make(chan struct{})
		go readPipe(outR, false, chunks, stop)
		go readPipe(errR, true, chunks, stop)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()

		timer := time.NewTimer(r.timeout)
		defer timer.Stop()
		var (
			waitErr   error
			running   = true
			open      = 2
			timedOut  bool
			killTimer <-chan time.Time
		)
		// finish kills the group, and waits for the process and the pipes.
		finish := func() {
			close(stop)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			if running {
				<-exited
			}
			for open > 0 {
				if c := <-chunks; c.err != nil {
					open--
				}
			}
		}
		var pending [2]strings.Builder // stdout, stderr: a split UTF-8 sequence waits here
		for running || open > 0 {
			select {
			case c := <-chunks:
				if c.err != nil {
					open--
					continue
				}
				i := 0
				if c.stderr {
					i = 1
				}
				pending[i].Write(c.data)
				text := takeValidUTF8(&pending[i])
				if text == "" {
					continue
				}
				o := output{stdout: text}
				if c.stderr {
					o = output{stderr: text}
				}
				if !yield(o, nil) {
					finish()
					return
				}
			case waitErr = <-exited:
				running = false
				// Whatever the script left behind in its group dies with it, so
				// its pipes reach their end.
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			case <-timer.C:
				timedOut = true
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
				killTimer = time.After(r.grace)
			case <-killTimer:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				if !running {
					// A process that left the group still holds a pipe: stop
					// waiting for it.
					outR.Close()
					errR.Close()
				}
			case <-ctx.Done():
				finish()
				yield(output{}, ctx.Err())
				return
			}
		}
		close(stop)
		last := output{done: true, stdout: pending[0].String(), stderr: pending[1].String(), code: exitCode(waitErr)}
		if timedOut {
			last.stderr += fmt.Sprintf("\nTimeout expired while running %s: the command did not finish within %v\n", r.method, r.timeout)
			last.code = TimeoutCode
		}
		yield(last, nil)
	}
}

// readPipe sends what f yields until its end, then closes f.
func readPipe(f *os.File, stderr bool, chunks chan<- chunk, stop <-chan struct{}) {
	defer f.Close()
	for {
		buf := make([]byte, 32<<10)
		n, err := f.Read(buf)
		if n > 0 {
			select {
			case chunks <- chunk{stderr: stderr, data: buf[:n]}:
			case <-stop:
			}
		}
		if err != nil {
			chunks <- chunk{stderr: stderr, err: err}
			return
		}
	}
}

// takeValidUTF8 returns the text in b up to an incomplete UTF-8 sequence at
// its end, which stays in b for the next chunk; invalid bytes become U+FFFD.
func takeValidUTF8(b *strings.Builder) string {
	s := b.String()
	cut := len(s)
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:]) {
				cut = i
			}
			break
		}
	}
	b.Reset()
	b.WriteString(s[cut:])
	return strings.ToValidUTF8(s[:cut], "\uFFFD")
}

// exitCode is the return code as upstream reports it: the exit status, or
// minus the signal that killed the process.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
