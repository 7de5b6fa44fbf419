package protocol

import (
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Kinds of frame, HTTP/2's frame type numbers, as jumpstarter.v1 FrameType
// and plugin.v1 FrameKind number them.
const (
	KindData   int32 = 0
	KindRST    int32 = 3
	KindPing   int32 = 6
	KindGoaway int32 = 7
)

// Field numbers of a frame's encoding, shared by jumpstarter.v1
// StreamRequest and StreamResponse and plugin.v1 Frame.
const (
	fieldPayload protowire.Number = 1
	fieldKind    protowire.Number = 2
)

// headroom is the room [ReadFrame] leaves before the payload for the
// payload's tag and length: one byte of tag, at most five of length.
const headroom = 8

// Frame is one frame of a byte stream, kept as its encoding in gRPC's
// buffers. The codec ([Codec]) fills a Frame from a received message
// without copying, and sends one by handing over its buffers, so a frame
// relayed from one hop to the next is never copied by jumpwire. The same
// Frame can be received as a jumpstarter.v1 StreamRequest or StreamResponse
// and sent as a plugin.v1 Frame, or the other way round: their encodings
// are the same.
//
// A Frame owns its buffers until it is sent or freed. Sending it (SendMsg)
// consumes it; a Frame that is not sent must be freed. A Frame is not safe
// for concurrent use.
type Frame struct {
	raw  mem.BufferSlice
	kind int32
	// The unread payload is bytes [off, end) of raw's concatenated data.
	off, end int
}

// Data returns a DATA frame carrying a copy of p, in one pooled buffer.
func Data(p []byte) *Frame {
	if len(p) == 0 {
		return &Frame{}
	}
	h := headerLen(len(p))
	bp := Shared.Get(h + len(p))
	copy((*bp)[len(payloadHeader((*bp)[:0], len(p))):], p)
	return &Frame{raw: mem.BufferSlice{mem.NewBuffer(bp, Shared)}, off: h, end: h + len(p)}
}

// Control returns a frame of the given kind without payload (GOAWAY,
// RST_STREAM or PING).
func Control(kind int32) *Frame {
	b := protowire.AppendVarint([]byte{byte(protowire.EncodeTag(fieldKind, protowire.VarintType))}, uint64(kind))
	return &Frame{raw: mem.BufferSlice{mem.SliceBuffer(b)}, kind: kind, off: len(b), end: len(b)}
}

// ReadFrame makes a DATA frame of one Read of r into a pooled buffer of
// size bytes, so that the bytes read are copied by nobody on their way out.
// It returns the frame (nil when the read returned no bytes) and the read's
// error.
func ReadFrame(r io.Reader, size int) (*Frame, error) {
	bp := Shared.Get(headroom + size)
	n, err := r.Read((*bp)[headroom:])
	if n <= 0 {
		Shared.Put(bp)
		return nil, err
	}
	h := headerLen(n)
	start := headroom - h
	payloadHeader((*bp)[start:start], n)
	whole := mem.NewBuffer(bp, Shared)
	b := whole.Slice(start, headroom+n)
	whole.Free()
	return &Frame{raw: mem.BufferSlice{b}, off: h, end: h + n}, err
}

// payloadHeader appends the tag and length that precede a payload of n
// bytes to b.
func payloadHeader(b []byte, n int) []byte {
	return protowire.AppendVarint(append(b, byte(protowire.EncodeTag(fieldPayload, protowire.BytesType))), uint64(n))
}

// headerLen is how long payloadHeader's header for n bytes is.
func headerLen(n int) int { return 1 + protowire.SizeVarint(uint64(n)) }

// Kind returns the frame's kind (KindData, KindGoaway, ...).
func (f *Frame) Kind() int32 { return f.kind }

// Len returns the number of payload bytes not read yet.
func (f *Frame) Len() int { return f.end - f.off }

// Read copies unread payload into p, as io.Reader does, and returns io.EOF
// once the payload is all read.
func (f *Frame) Read(p []byte) (int, error) {
	if f.off >= f.end {
		return 0, io.EOF
	}
	n := 0
	f.each(func(b []byte) bool {
		c := copy(p[n:], b)
		n += c
		return n < len(p)
	})
	f.off += n
	return n, nil
}

// WriteTo writes the unread payload to w, with one writev where w supports
// it (net.Buffers), and returns how much was written.
func (f *Frame) WriteTo(w io.Writer) (int64, error) {
	var bufs net.Buffers
	f.each(func(b []byte) bool {
		bufs = append(bufs, b)
		return true
	})
	n, err := bufs.WriteTo(w)
	f.off += int(n)
	return n, err
}

// Bytes returns the unread payload as one slice that stays valid after the
// frame is gone, and releases the frame. A payload that lies in one buffer
// is not copied: that buffer is left to the garbage collector rather than
// returned to the pool.
func (f *Frame) Bytes() []byte {
	var parts [][]byte
	f.each(func(b []byte) bool {
		parts = append(parts, b)
		return true
	})
	switch len(parts) {
	case 0:
		f.Free()
		return nil
	case 1:
		f.raw, f.off, f.end = nil, 0, 0 // not freed: the slice lives on
		return parts[0]
	}
	out := make([]byte, 0, f.Len())
	for _, b := range parts {
		out = append(out, b...)
	}
	f.Free()
	return out
}

// Free releases the frame's buffers. It is safe to call more than once and
// on a frame that was sent.
func (f *Frame) Free() {
	f.raw.Free()
	f.raw, f.off, f.end = nil, 0, 0
}

// each calls fn with the unread payload, piece by piece as it lies in the
// buffers, until fn returns false.
func (f *Frame) each(fn func([]byte) bool) {
	pos := 0
	for _, buf := range f.raw {
		b := buf.ReadOnlyData()
		lo, hi := max(f.off-pos, 0), min(f.end-pos, len(b))
		pos += len(b)
		if lo >= hi {
			if pos >= f.end {
				return
			}
			continue
		}
		if !fn(b[lo:hi]) || pos >= f.end {
			return
		}
	}
}

// marshal hands the frame's encoding over to gRPC, which frees it once it
// is written out.
func (f *Frame) marshal() mem.BufferSlice {
	raw := f.raw
	if raw == nil {
		raw = mem.BufferSlice{} // an empty DATA frame: an empty message
	}
	f.raw, f.off, f.end = nil, 0, 0
	return raw
}

// unmarshal takes a reference to a received message's buffers and finds the
// frame's kind and payload in them. Fields come in any order; the last
// payload and the last kind win, as in protobuf; unknown fields are kept in
// the encoding (a relayed frame carries them on) and otherwise ignored.
func (f *Frame) unmarshal(data mem.BufferSlice) error {
	f.Free()
	c := cursor{s: data}
	kind := KindData
	off, end := 0, 0
	for !c.done() {
		tag, err := c.varint()
		if err != nil {
			return err
		}
		num, typ := protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber {
			return fmt.Errorf("frame: invalid field number %d", num)
		}
		switch {
		case num == fieldPayload && typ == protowire.BytesType:
			n, err := c.varint()
			if err != nil {
				return err
			}
			off = c.pos
			if err := c.skip(n); err != nil {
				return err
			}
			end = c.pos
		case num == fieldKind && typ == protowire.VarintType:
			v, err := c.varint()
			if err != nil {
				return err
			}
			kind = int32(v)
		default:
			if err := c.skipField(num, typ); err != nil {
				return err
			}
		}
	}
	data.Ref()
	f.raw, f.kind, f.off, f.end = data, kind, off, end
	return nil
}

// errTruncated is a frame whose encoding ends inside a field.
var errTruncated = errors.New("frame: truncated field")

// cursor reads a message's encoding across the buffers it lies in.
type cursor struct {
	s   mem.BufferSlice
	i   int // buffer
	j   int // byte within buffer i
	pos int // byte within the whole
}

func (c *cursor) done() bool {
	for c.i < len(c.s) && c.j >= c.s[c.i].Len() {
		c.i, c.j = c.i+1, 0
	}
	return c.i >= len(c.s)
}

func (c *cursor) byte() (byte, error) {
	if c.done() {
		return 0, errTruncated
	}
	b := c.s[c.i].ReadOnlyData()[c.j]
	c.j++
	c.pos++
	return b, nil
}

func (c *cursor) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := c.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("frame: varint overflows 64 bits")
}

func (c *cursor) skip(n uint64) error {
	for n > 0 {
		if c.done() {
			return errTruncated
		}
		step := min(n, uint64(c.s[c.i].Len()-c.j))
		c.j += int(step)
		c.pos += int(step)
		n -= step
	}
	return nil
}

// maxGroupDepth is how deeply groups may nest in a frame's unknown fields:
// as deep as protobuf's own decoder lets them (one past its recursion
// limit, which does not count the innermost group), so that the frame
// decoder accepts what protobuf accepts and nothing deeper.
const maxGroupDepth = protowire.DefaultRecursionLimit + 1

// skipField skips the value of field num of wire type typ, whose tag was
// just read. Groups are skipped with a stack of the open groups' numbers,
// not by recursion, so that the depth of a peer's nesting costs at most
// maxGroupDepth numbers and never the goroutine's stack.
func (c *cursor) skipField(num protowire.Number, typ protowire.Type) error {
	var open []protowire.Number // the groups entered and not yet ended
	for {
		switch typ {
		case protowire.StartGroupType:
			if len(open) >= maxGroupDepth {
				return fmt.Errorf("frame: groups nested more than %d deep", maxGroupDepth)
			}
			open = append(open, num)
		case protowire.EndGroupType:
			if len(open) == 0 {
				return fmt.Errorf("frame: end of group %d that never started", num)
			}
			if top := open[len(open)-1]; top != num {
				return fmt.Errorf("frame: group %d ends as group %d", top, num)
			}
			open = open[:len(open)-1]
		case protowire.VarintType:
			if _, err := c.varint(); err != nil {
				return err
			}
		case protowire.Fixed32Type:
			if err := c.skip(4); err != nil {
				return err
			}
		case protowire.Fixed64Type:
			if err := c.skip(8); err != nil {
				return err
			}
		case protowire.BytesType:
			n, err := c.varint()
			if err != nil {
				return err
			}
			if err := c.skip(n); err != nil {
				return err
			}
		default:
			return fmt.Errorf("frame: unsupported wire type %d", typ)
		}
		if len(open) == 0 {
			return nil
		}
		tag, err := c.varint()
		if err != nil {
			return err
		}
		num, typ = protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber {
			return fmt.Errorf("frame: invalid field number %d", num)
		}
	}
}

// Sizes of the reads a [FrameReader] makes.
const (
	minRead = 16 << 10
	maxRead = 256 << 10
)

// FrameReader makes DATA frames of reads from a connection. Its reads grow
// while they come back full, up to 256 KiB, so a bulk transfer travels in
// large frames (every frame costs a hand-off between goroutines and
// processes on each hop), and shrink again when they come back small, so an
// idle or interactive connection does not hold a large buffer while it
// waits.
type FrameReader struct {
	r    io.Reader
	size int
}

// NewFrameReader returns a FrameReader reading r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r, size: minRead} }

// Next reads once, as [ReadFrame] does.
func (fr *FrameReader) Next() (*Frame, error) {
	f, err := ReadFrame(fr.r, fr.size)
	if f != nil {
		switch n := f.Len(); {
		case n == fr.size && fr.size < maxRead:
			fr.size *= 2
		case n < fr.size/4 && fr.size > minRead:
			fr.size /= 2
		}
	}
	return f, err
}
