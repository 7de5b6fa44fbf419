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
			d := newEscapeDetector()
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
	d := newEscapeDetector()
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
		c := newStdioConn(pr, io.Discard, newEscapeDetector())
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
		esc := newEscapeDetector()
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
		c := newStdioConn(bytes.NewReader([]byte("a\x02\x02")), io.Discard, newEscapeDetector())
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
