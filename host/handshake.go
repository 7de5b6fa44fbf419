package host

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// handshakeLine records the first line a plugin writes to stdout, which go-plugin
// reads as the plugin's handshake, so that a launch that fails can be explained
// from what the plugin did rather than from go-plugin's error text.
type handshakeLine struct {
	io.ReadCloser

	mu       sync.Mutex
	line     []byte
	complete bool // the line ended with a newline
	closed   bool // stdout ended (or failed) before the line was complete
}

// maxHandshakeLine bounds what is kept of the line.
const maxHandshakeLine = 1 << 10

func (h *handshakeLine) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	h.mu.Lock()
	if !h.complete && !h.closed {
		chunk, _, found := bytes.Cut(p[:n], []byte{'\n'})
		h.line = append(h.line, chunk[:min(len(chunk), maxHandshakeLine-len(h.line))]...)
		h.complete = found
		h.closed = !found && err != nil
	}
	h.mu.Unlock()
	return n, err
}

// seen returns the first line (trimmed) and whether stdout ended before a
// line was complete: the plugin printed nothing, or exited mid-line.
func (h *handshakeLine) seen() (line string, ended bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.TrimSpace(string(h.line)), h.closed
}

// handshakeFields splits a go-plugin handshake line,
// CORE|APP|NETWORK|ADDRESS|PROTOCOL[|CERT], into its fields; ok is false for
// a line that is not one.
func handshakeFields(line string) (core, app string, ok bool) {
	f := strings.Split(line, "|")
	if len(f) < 4 {
		return "", "", false
	}
	return f[0], f[1], true
}
