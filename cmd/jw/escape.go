package main

import (
	"bytes"
	"time"
)

// The console's escape sequence: Ctrl-B pressed escapeCount times in a row within escapeWindow.
const (
	escapeKey    = 0x02 // Ctrl-B
	escapeCount  = 3
	escapeWindow = time.Second
)

// escapeDetector finds the escape sequence in what the user types. Ctrl-B bytes that may start
// the sequence are held back; they are passed through as soon as they cannot complete it (another
// byte follows, or the window passes), so a lone Ctrl-B still reaches the device.
//
// It is a plain state machine: the caller supplies the time of each read, which keeps it
// deterministic under test.
type escapeDetector struct {
	window time.Duration
	held   int       // Ctrl-B bytes held back
	first  time.Time // when the first held byte arrived
}

func newEscapeDetector() *escapeDetector { return &escapeDetector{window: escapeWindow} }

// feed takes the bytes of one read made at now. It returns the bytes to pass to the device and
// whether the sequence completed; on completion the bytes after the sequence are dropped.
func (d *escapeDetector) feed(p []byte, now time.Time) (out []byte, detach bool) {
	out = d.expire(now)
	for _, b := range p {
		if b != escapeKey {
			out = append(out, d.release()...)
			out = append(out, b)
			continue
		}
		if d.held > 0 && now.Sub(d.first) >= d.window {
			out = append(out, d.release()...)
		}
		if d.held == 0 {
			d.first = now
		}
		if d.held++; d.held == escapeCount {
			d.held = 0
			return out, true
		}
	}
	return out, false
}

// expire returns the held bytes once the window has passed at now (nil otherwise).
func (d *escapeDetector) expire(now time.Time) []byte {
	if d.held > 0 && now.Sub(d.first) >= d.window {
		return d.release()
	}
	return nil
}

// deadline returns when the held bytes expire; the zero time when none are held.
func (d *escapeDetector) deadline() time.Time {
	if d.held == 0 {
		return time.Time{}
	}
	return d.first.Add(d.window)
}

// release returns the held bytes and forgets them.
func (d *escapeDetector) release() []byte {
	if d.held == 0 {
		return nil
	}
	out := bytes.Repeat([]byte{escapeKey}, d.held)
	d.held = 0
	return out
}
