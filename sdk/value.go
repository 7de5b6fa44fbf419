package sdk

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// Arguments and results cross the wire as *structpb.Value: JSON's null, number (a double), string,
// boolean, list and struct. This file converts between those and typed Go values by reflection. Struct
// tags are read as encoding/json reads them; decoding is strict: a value that does not fit its Go type
// is an error naming where it is and why, never a silent zero.

// ValueError says which value did not decode and why.
type ValueError struct {
	// Path names the value, e.g. "argument 2" or "config.ports[1].host". For an error from encoding it
	// is relative to the encoded value, and empty when the value itself is at fault.
	Path string
	// Msg says what is wrong with the value.
	Msg string
}

// Error returns "<path>: <msg>", or only the message when Path is empty.
func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// maxDepth bounds how deeply a value may nest, so that a pointer cycle or a hostile input fails with an
// error instead of exhausting the stack.
const maxDepth = 1000

// shortLen is about how much of a value an error message quotes.
const shortLen = 40

// codecError is a ValueError under construction. Path steps are collected innermost first while the
// error travels up, so a call that succeeds never builds a path.
type codecError struct {
	segs []string
	msg  string
}

func codecErrorf(format string, args ...any) *codecError {
	return &codecError{msg: fmt.Sprintf(format, args...)}
}

func (e *codecError) at(seg string) *codecError {
	e.segs = append(e.segs, seg)
	return e
}

func (e *codecError) valueError(path string) *ValueError {
	const maxSegs = 16 // a path through a pointer cycle would be maxDepth steps long
	var b strings.Builder
	b.WriteString(path)
	for i := len(e.segs) - 1; i >= 0; i-- {
		seg := e.segs[i]
		if len(e.segs)-i > maxSegs {
			b.WriteString("...")
			break
		}
		if b.Len() == 0 {
			seg = strings.TrimPrefix(seg, ".")
		}
		b.WriteString(seg)
	}
	return &ValueError{Path: b.String(), Msg: e.msg}
}

// keySeg renders an object key as a path step: ".name", or `["odd key"]` when it is not identifier-like.
func keySeg(key string) string {
	for i, c := range key {
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && (c == '-' || '0' <= c && c <= '9') {
			continue
		}
		return "[" + strconv.Quote(key) + "]"
	}
	if key == "" {
		return `[""]`
	}
	return "." + key
}

func indexSeg(i int) string { return "[" + strconv.Itoa(i) + "]" }

// typeMismatch is the error for a value of the wrong JSON type.
func typeMismatch(t reflect.Type, src *structpb.Value) *codecError {
	return codecErrorf("expected %s, got %s", jsonType(t), describeValue(src))
}
