package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// waitFor bounds every wait of a test, so a broken board fails it instead of
// hanging it.
const waitFor = 5 * time.Second

// started is a board that run serves in the test process.
type started struct {
	tty, slave, http string
	stop             func() // stops the board and waits for run to return; idempotent
}

// start runs the board with o until the test ends, returning what it printed.
func start(t *testing.T, o options) *started {
	t.Helper()
	if o.Name == "" {
		o.Name = "test-board"
	}
	o.Log = hclog.New(&hclog.LoggerOptions{Name: "board", Output: testWriter{t}, Level: hclog.Debug})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, o, pw)
		pw.Close()
		done <- err
	}()
	var once sync.Once
	var runErr error
	s := &started{stop: func() {
		once.Do(func() {
			cancel()
			pr.Close() // in case run still prints
			runErr = <-done
		})
		if runErr != nil {
			t.Errorf("run: %v", runErr)
		}
	}}
	t.Cleanup(func() { s.stop() })

	sc := bufio.NewScanner(pr)
	for range boolCount(o.TTY != "", o.HTTP != "") {
		if !sc.Scan() {
			s.stop()
			t.Fatal("run stopped before printing its resources")
		}
		line := sc.Text()
		if tty, slave, ok := strings.Cut(strings.TrimPrefix(line, "serial console on "), " -> "); ok {
			s.tty, s.slave = tty, slave
		} else if addr, ok := strings.CutPrefix(line, "http on "); ok {
			s.http = addr
		} else {
			t.Fatalf("unexpected line %q", line)
		}
	}
	return s
}

func boolCount(bs ...bool) (n int) {
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// terminal is a client's end of the board's console.
type terminal struct {
	t    *testing.T
	f    *os.File
	seen string // read but not yet expected
}

func openTerminal(t *testing.T, path string) *terminal {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the console: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return &terminal{t: t, f: f}
}

func (c *terminal) send(s string) {
	c.t.Helper()
	if _, err := c.f.WriteString(s); err != nil {
		c.t.Fatalf("type %q: %v", s, err)
	}
}

// expect reads until the console has printed want and returns everything up
// to and including it.
func (c *terminal) expect(want string) string {
	c.t.Helper()
	if err := c.f.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 1024)
	for !strings.Contains(c.seen, want) {
		n, err := c.f.Read(buf)
		c.seen += string(buf[:n])
		if err != nil {
			c.t.Fatalf("waiting for %q: %v; the console printed %q", want, err, c.seen)
		}
	}
	i := strings.Index(c.seen, want) + len(want)
	got := c.seen[:i]
	c.seen = c.seen[i:]
	return got
}

func TestConsole(t *testing.T) {
	s := start(t, options{TTY: filepath.Join(t.TempDir(), "tty")})
	if target, err := os.Readlink(s.tty); err != nil || target != s.slave || !strings.HasPrefix(target, "/dev/pts/") {
		t.Fatalf("%s links to %q (%v), want the printed terminal %s", s.tty, target, err, s.slave)
	}
	c := openTerminal(t, s.tty)
	if got := c.expect("test-board login: "); !strings.Contains(got, "Starting kernel ...\r\n") {
		t.Errorf("boot log %q", got)
	}
	c.send("root\r")
	c.expect("root@test-board:~# ")
	c.send("uname -a\r")
	if got, want := c.expect("root@test-board:~# "), "uname -a\r\nLinux test-board 6.6.23-jumpwire #1 "; !strings.HasPrefix(got, want) {
		t.Errorf("uname -a: got %q, want it to start with %q", got, want)
	}
	c.send("echo hi\n")
	if got, want := c.expect("root@test-board:~# "), "echo hi\r\nhi\r\nroot@test-board:~# "; got != want {
		t.Errorf("echo hi: got %q, want %q", got, want)
	}
}

func TestConsoleReconnect(t *testing.T) {
	s := start(t, options{TTY: filepath.Join(t.TempDir(), "tty"), HTTP: "127.0.0.1:0"})
	c := openTerminal(t, s.tty)
	c.expect("login: ")
	c.send("alice\r")
	c.expect("alice@test-board:~$ ")
	c.f.Close()

	// Like getty, the board logs alice out once it notices she hung up.
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(get(t, s.http), "console: at the login prompt") {
		if time.Now().After(deadline) {
			t.Fatal("the board did not notice the console was closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c = openTerminal(t, s.tty)
	c.expect("test-board login: ")
	c.send("bob\r")
	c.expect("bob@test-board:~$ ")
}

func TestHTTP(t *testing.T) {
	s := start(t, options{HTTP: "127.0.0.1:0"})
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/", http.StatusOK},
		{"POST", "/", http.StatusMethodNotAllowed},
		{"GET", "/nothing", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+s.http+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if tt.code == http.StatusOK && !strings.HasPrefix(string(body), "hello from the demo board\nname: test-board\npower: on\nuptime: ") {
				t.Errorf("body %q", body)
			}
		})
	}
}

func get(t *testing.T, addr string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestTTYLink(t *testing.T) {
	t.Run("stale link replaced and removed on exit", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new-dir", "tty")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/pts/does-not-exist", path); err != nil {
			t.Fatal(err)
		}
		s := start(t, options{TTY: path})
		if target, _ := os.Readlink(path); target != s.slave {
			t.Fatalf("%s links to %q, want %s", path, target, s.slave)
		}
		s.stop()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after exit: %s still there (%v)", path, err)
		}
	})
	t.Run("live link of another board kept", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tty")
		first := start(t, options{TTY: path})
		err := run(t.Context(), options{TTY: path, Log: hclog.NewNullLogger()}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "in use by another board") {
			t.Fatalf("a second board on the same path: %v; want a refusal", err)
		}
		if target, _ := os.Readlink(path); target != first.slave {
			t.Fatalf("the second board changed %s to %q; want the first board's %s", path, target, first.slave)
		}
	})
	t.Run("missing directory created", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a", "b", "tty")
		s := start(t, options{TTY: path})
		if target, _ := os.Readlink(path); target != s.slave {
			t.Fatalf("%s links to %q, want %s", path, target, s.slave)
		}
	})
	t.Run("regular file kept", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tty")
		if err := os.WriteFile(path, []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // run returns at once if it starts after all
		err := run(ctx, options{TTY: path, Name: "x", Log: hclog.NewNullLogger()}, io.Discard)
		if want := path + " exists and is not a symbolic link"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error saying %q", err, want)
		}
		if data, _ := os.ReadFile(path); string(data) != "mine" {
			t.Errorf("the file was changed: %q", data)
		}
	})
}

// TestInput feeds the console's line discipline and shell directly.
func TestInput(t *testing.T) {
	const prompt = "root@b:~# "
	tests := []struct {
		name, in, want string
	}{
		{"echo", "echo hello  world\r", "echo hello  world\r\nhello world\r\n" + prompt},
		{"echo quotes", "echo \"hi there\"\r", "echo \"hi there\"\r\nhi there\r\n" + prompt},
		{"crlf is one enter", "echo a\r\n", "echo a\r\na\r\n" + prompt},
		{"lf", "echo a\n", "echo a\r\na\r\n" + prompt},
		{"empty line", "\r", "\r\n" + prompt},
		{"backspace", "ecg\x7fho x\by\r", "ecg\b \bho x\b \by\r\ny\r\n" + prompt},
		{"backspace at start", "\x7f\r", "\r\n" + prompt},
		{"arrow keys ignored", "\x1b[Aecho\x1b[1;5C z\r", "echo z\r\nz\r\n" + prompt},
		{"ctrl-c", "ech\x03", "ech^C\r\n" + prompt},
		{"unknown", "frob -x\r", "frob -x\r\nsh: frob: not found\r\n" + prompt},
		{"uname", "uname\r", "uname\r\nLinux\r\n" + prompt},
		{"uname -r", "uname -r\r", "uname -r\r\n6.6.23-jumpwire\r\n" + prompt},
		{"cat hostname", "cat /etc/hostname\r", "cat /etc/hostname\r\nb\r\n" + prompt},
		{"cat missing", "cat /x\r", "cat /x\r\ncat: /x: No such file or directory\r\n" + prompt},
		{"exit", "exit\r", "exit\r\nlogout\r\n\r\nb login: "},
		{"ctrl-d", "\x04", "logout\r\n\r\nb login: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBoard("b")
			b.input([]byte("root\r"))
			if got := string(b.input([]byte(tt.in))); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}

	t.Run("cpuinfo", func(t *testing.T) {
		b := newBoard("b")
		b.input([]byte("root\r"))
		if got := string(b.input([]byte("cat /proc/cpuinfo\r"))); !strings.Contains(got, "\r\nprocessor\t: 0\r\n") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("reboot", func(t *testing.T) {
		b := newBoard("b")
		b.input([]byte("root\r"))
		got := string(b.input([]byte("reboot\r")))
		if !strings.Contains(got, "reboot: Restarting system\r\n") || !strings.Contains(got, "Starting kernel ...") || !strings.HasSuffix(got, "\r\nb login: ") {
			t.Errorf("got %q", got)
		}
		if st := b.status(); !strings.Contains(st, "boots: 2\n") || !strings.Contains(st, "console: at the login prompt\n") {
			t.Errorf("status after reboot: %q", st)
		}
	})
	t.Run("login prompt", func(t *testing.T) {
		b := newBoard("b")
		if got, want := string(b.input([]byte("\r \radmin x\r"))), "\r\nb login:  \r\nb login: admin x\r\nWelcome"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "admin@b:~$ ") {
			t.Errorf("got %q, want it to start with %q and end with the prompt of admin", got, want)
		}
	})
}

func FuzzInput(f *testing.F) {
	for _, s := range []string{"root\recho hi\r", "\x1b[A\x7f\x03\x04", "x\r\nreboot\r", strings.Repeat("a", 2*maxLine)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b := newBoard("b")
		b.input(in)
		if len(b.line) > maxLine {
			t.Errorf("line grew to %d bytes", len(b.line))
		}
	})
}
