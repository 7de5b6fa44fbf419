package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"
)

// The console's escape sequence: the escape key (Ctrl-B unless --escape or $JUMPWIRE_ESCAPE
// says otherwise) pressed escapeCount times in a row within escapeWindow.
const (
	defaultEscapeKey = 0x02 // Ctrl-B
	escapeCount      = 3
	escapeWindow     = time.Second
	escapeEnv        = "JUMPWIRE_ESCAPE"
)

// escapeKey returns the console's escape key: flag (--escape) when set, else $JUMPWIRE_ESCAPE,
// else Ctrl-B.
func escapeKey(flag string) (byte, error) {
	spec, from := flag, "--escape"
	if spec == "" {
		spec, from = os.Getenv(escapeEnv), "$"+escapeEnv
	}
	if spec == "" {
		return defaultEscapeKey, nil
	}
	key, ok := parseControlKey(spec)
	if !ok {
		return 0, fmt.Errorf("%s %q: want a control key as ^X or ctrl-X, e.g. ^] or ctrl-b", from, spec)
	}
	return key, nil
}

// parseControlKey reads a control key in caret notation (^B, ^]) or as ctrl-B / Ctrl-].
func parseControlKey(s string) (byte, bool) {
	var c string
	switch lower := strings.ToLower(s); {
	case strings.HasPrefix(s, "^"):
		c = s[1:]
	case strings.HasPrefix(lower, "ctrl-"), strings.HasPrefix(lower, "ctrl+"):
		c = s[5:]
	default:
		return 0, false
	}
	if len(c) != 1 {
		return 0, false
	}
	k := strings.ToUpper(c)[0]
	if k < '@' || k > '_' {
		return 0, false
	}
	return k - '@', true
}

// keyName spells a control key for people: "Ctrl-B", "Ctrl-]".
func keyName(key byte) string { return "Ctrl-" + string(rune(key+'@')) }

// escapeDetector finds the escape sequence in what the user types. Ctrl-B bytes that may start
// the sequence are held back; they are passed through as soon as they cannot complete it (another
// byte follows, or the window passes), so a lone Ctrl-B still reaches the device.
//
// It is a plain state machine: the caller supplies the time of each read, which keeps it
// deterministic under test.
type escapeDetector struct {
	key    byte
	window time.Duration
	held   int       // escape keys held back
	first  time.Time // when the first held byte arrived
}

func newEscapeDetector(key byte) *escapeDetector {
	return &escapeDetector{key: key, window: escapeWindow}
}

// feed takes the bytes of one read made at now. It returns the bytes to pass to the device and
// whether the sequence completed; on completion the bytes after the sequence are dropped.
func (d *escapeDetector) feed(p []byte, now time.Time) (out []byte, detach bool) {
	out = d.expire(now)
	for _, b := range p {
		if b != d.key {
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
	out := bytes.Repeat([]byte{d.key}, d.held)
	d.held = 0
	return out
}
