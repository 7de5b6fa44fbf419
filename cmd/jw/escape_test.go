package main

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestEscapeDetector(t *testing.T) {
	type read struct {
		in string
		at time.Duration // since the start
	}
	const B = "\x02"
	tests := []struct {
		name   string
		reads  []read
		out    string // passed through, in total
		detach bool
	}{
		{"plain text", []read{{"hello", 0}}, "hello", false},
		{"three in one read", []read{{"ab" + B + B + B, 0}}, "ab", true},
		{"bytes after the sequence are dropped", []read{{B + B + B + "rest", 0}}, "", true},
		{"split across reads", []read{{"x" + B, 0}, {B, 100 * time.Millisecond}, {B + "y", 200 * time.Millisecond}}, "x", true},
		{"one at a time", []read{{B, 0}, {B, 300 * time.Millisecond}, {B, 600 * time.Millisecond}}, "", true},
		{"interrupted by another byte", []read{{B + B + "a" + B, 0}}, B + B + "a", false},
		{"interrupted across reads", []read{{B + B, 0}, {"a", 10 * time.Millisecond}, {B + B, 20 * time.Millisecond}}, B + B + "a", false},
		{"two then too late", []read{{B + B, 0}, {B, 1500 * time.Millisecond}}, B + B, false},
		{"too late, then a full sequence", []read{{B + B, 0}, {B + B + B, 1500 * time.Millisecond}}, B + B, true},
		{"window counts from the first", []read{{B, 0}, {B, 900 * time.Millisecond}, {B, 1100 * time.Millisecond}}, B + B, false},
		{"four: the first three detach", []read{{B + B + B + B, 0}}, "", true},
		{"other control keys pass", []read{{"\x03\x01\x1d", 0}}, "\x03\x01\x1d", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newEscapeDetector(defaultEscapeKey)
			start := time.Now()
			var out []byte
			detach := false
			for _, r := range tt.reads {
				if detach {
					t.Fatal("input after the detach")
				}
				o, dt := d.feed([]byte(r.in), start.Add(r.at))
				out = append(out, o...)
				detach = dt
			}
			if string(out) != tt.out || detach != tt.detach {
				t.Errorf("passed %q, detach %v; want %q, %v", out, detach, tt.out, tt.detach)
			}
		})
	}
}

func TestEscapeDetectorExpiry(t *testing.T) {
	d := newEscapeDetector(defaultEscapeKey)
	start := time.Now()
	if out, _ := d.feed([]byte("\x02\x02"), start); len(out) != 0 {
		t.Fatalf("held bytes passed at once: %q", out)
	}
	if got := d.deadline(); !got.Equal(start.Add(escapeWindow)) {
		t.Errorf("deadline %v, want %v", got, start.Add(escapeWindow))
	}
	if out := d.expire(start.Add(escapeWindow / 2)); out != nil {
		t.Errorf("expired early: %q", out)
	}
	if out := d.expire(start.Add(escapeWindow)); string(out) != "\x02\x02" {
		t.Errorf("expire passed %q, want the two Ctrl-B", out)
	}
	if !d.deadline().IsZero() {
		t.Error("deadline set with nothing held")
	}
}

// TestStdioConnEscape runs the detector behind a connection's Read, as the console does.
func TestStdioConnEscape(t *testing.T) {
	t.Run("detach", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		c := newStdioConn(pr, io.Discard, newEscapeDetector(defaultEscapeKey))
		defer c.Close()
		go func() {
			_, _ = pw.Write([]byte("ls\r\x02"))
			_, _ = pw.Write([]byte("\x02\x02"))
		}()
		got, err := readUntilError(c)
		if string(got) != "ls\r" || !errors.Is(err, errDetached) {
			t.Errorf("read %q, %v; want \"ls\\r\", errDetached", got, err)
		}
	})
	t.Run("a lone Ctrl-B reaches the device without more input", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		esc := newEscapeDetector(defaultEscapeKey)
		esc.window = 20 * time.Millisecond
		c := newStdioConn(pr, io.Discard, esc)
		defer c.Close()
		go func() { _, _ = pw.Write([]byte("\x02")) }()
		buf := make([]byte, 8)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "\x02" {
			t.Errorf("Read = %q, %v; want the Ctrl-B", buf[:n], err)
		}
	})
	t.Run("held bytes at the end of input", func(t *testing.T) {
		c := newStdioConn(bytes.NewReader([]byte("a\x02\x02")), io.Discard, newEscapeDetector(defaultEscapeKey))
		got, err := readUntilError(c)
		if string(got) != "a\x02\x02" || !errors.Is(err, io.EOF) {
			t.Errorf("read %q, %v; want \"a\\x02\\x02\", EOF", got, err)
		}
	})
	t.Run("close ends a blocked Read", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		c := newStdioConn(pr, io.Discard, nil)
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			done <- err
		}()
		_ = c.CloseWrite()
		if err := <-done; !errors.Is(err, io.EOF) {
			t.Errorf("Read after CloseWrite: %v, want EOF", err)
		}
	})
}

func readUntilError(r io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestEscapeKey(t *testing.T) {
	tests := []struct {
		flag, env string
		want      byte
		err       string
	}{
		{"", "", 0x02, ""},
		{"^]", "", 0x1d, ""},
		{"ctrl-b", "^A", 0x02, ""},
		{"Ctrl-]", "", 0x1d, ""},
		{"", "^a", 0x01, ""},
		{"^^", "", 0x1e, ""},
		{"x", "", 0, `--escape "x": want a control key as ^X or ctrl-X, e.g. ^] or ctrl-b`},
		{"^ab", "", 0, `--escape "^ab": want a control key as ^X or ctrl-X, e.g. ^] or ctrl-b`},
		{"", "ctrl-1", 0, `$JUMPWIRE_ESCAPE "ctrl-1": want a control key as ^X or ctrl-X, e.g. ^] or ctrl-b`},
	}
	for _, tt := range tests {
		t.Setenv(escapeEnv, tt.env)
		key, err := escapeKey(tt.flag)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("escapeKey(%q) with $%s=%q: %v, want error %q", tt.flag, escapeEnv, tt.env, err, tt.err)
			}
			continue
		}
		if err != nil || key != tt.want {
			t.Errorf("escapeKey(%q) with $%s=%q = %#x, %v; want %#x", tt.flag, escapeEnv, tt.env, key, err, tt.want)
		}
	}
	if got := keyName(0x1d); got != "Ctrl-]" {
		t.Errorf("keyName(0x1d) = %q", got)
	}
}

// An escape key other than Ctrl-B detaches, and Ctrl-B then passes through.
func TestOtherEscapeKey(t *testing.T) {
	d := newEscapeDetector(0x1d)
	now := time.Now()
	out, detach := d.feed([]byte("a\x02\x1d\x1d\x1d"), now)
	if !detach || string(out) != "a\x02" {
		t.Errorf("feed: %q, detach %v; want \"a\\x02\" and detach", out, detach)
	}
}
