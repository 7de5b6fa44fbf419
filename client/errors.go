package client

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a request the exporter answered with an error. Its text is one line: the operation (the
// driver's dotted path and the method, or the RPC), the status code in words and the exporter's
// message, e.g. `power.on: unavailable: driver "power" exited (signal: killed)`.
//
// Error wraps the gRPC status error: status.FromError, status.Code and errors.As see the original
// code and message.
type Error struct {
	// Op is what failed: "dut.power.on" for a driver call, "get report" for an RPC.
	Op string
	// Err is the gRPC status error as received.
	Err error

	// local is set when the caller's own context ended the call: the status message is then
	// transport detail and the code says it all.
	local bool
}

// Error returns the one-line description. The code is left out when it is Unknown (the exporter
// had nothing more specific to say than its message).
func (e *Error) Error() string {
	s := status.Convert(e.Err)
	var b strings.Builder
	b.WriteString(e.Op)
	if s.Code() != codes.Unknown || s.Message() == "" {
		b.WriteString(": ")
		b.WriteString(CodeText(s.Code()))
	}
	if msg := s.Message(); msg != "" && !e.local && !saysCode(msg, s.Code()) {
		b.WriteString(": ")
		b.WriteString(oneLine(trimMethod(trimKind(msg, s.Code()), e.Op)))
	}
	return b.String()
}

// trimMethod drops the method's name where the message starts with it, as the SDK's argument
// errors do ("set_dtr: value: expected boolean, got 2"): the op names it already.
func trimMethod(msg, op string) string {
	method := op[strings.LastIndexByte(op, '.')+1:]
	if method != "" && strings.HasPrefix(msg, method+": ") {
		return strings.TrimPrefix(msg, method+": ")
	}
	return msg
}

// kindWords are the texts of the SDK's error kinds (sdk.ErrInvalidArgument and the others) by the
// code they map to, where they differ from the code's own words.
var kindWords = map[codes.Code]string{
	codes.Unimplemented:      "not supported",
	codes.Internal:           "i/o error",
	codes.FailedPrecondition: "busy",
}

// trimKind drops the error kind a driver appended to its message when the code says it already:
// a driver's fmt.Errorf("channel must be 1-4, got 9: %w", sdk.ErrInvalidArgument) reads
// "relay.on: invalid argument: channel must be 1-4, got 9", not "...: invalid argument" twice.
func trimKind(msg string, c codes.Code) string {
	for _, words := range []string{CodeText(c), kindWords[c]} {
		if words != "" && strings.HasSuffix(msg, ": "+words) {
			return strings.TrimSuffix(msg, ": "+words)
		}
	}
	return msg
}

// Unwrap returns the gRPC status error.
func (e *Error) Unwrap() error { return e.Err }

// Code returns the gRPC status code.
func (e *Error) Code() codes.Code { return status.Code(e.Err) }

// GRPCStatus returns the status as the exporter sent it, so status.FromError(err) gives the
// exporter's own message rather than this error's text.
func (e *Error) GRPCStatus() *status.Status { return status.Convert(e.Err) }

// saysCode reports whether msg only repeats the code, as grpc-go's own messages for a local
// deadline or cancellation do ("context deadline exceeded").
func saysCode(msg string, c codes.Code) bool {
	return strings.TrimPrefix(msg, "context ") == CodeText(c)
}

// CodeText spells a gRPC code in lowercase words, as used in [Error] texts: codes.NotFound becomes
// "not found", codes.Unavailable "unavailable".
func CodeText(c codes.Code) string {
	var b strings.Builder
	prevLower := false
	for _, r := range c.String() {
		upper := unicode.IsUpper(r)
		if upper && prevLower {
			b.WriteByte(' ')
		}
		prevLower = unicode.IsLower(r)
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// unreachableError is ErrUnreachable with the address and the reason.
type unreachableError struct {
	addr   string
	reason string
	err    error
}

func (e *unreachableError) Error() string {
	reason := e.reason
	if reason == "" {
		reason = dialReason(e.err)
	}
	return ErrUnreachable.Error() + " at " + e.addr + ": " + reason
}

func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

func (e *unreachableError) Unwrap() error { return e.err }

// dialReason says in a few words why connecting to a unix socket failed.
func dialReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no such file"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens on the socket)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.Is(err, syscall.ENOTSOCK):
		return "not a socket"
	}
	return err.Error()
}

// wrap turns an error from a gRPC call made with ctx into an *Error, or into ErrUnreachable when
// the connection itself failed.
func (c *Client) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return &Error{Op: op, Err: err}
	}
	if s.Code() == codes.Unavailable {
		if reason, ok := connectionFailure(s.Message()); ok {
			return &unreachableError{addr: c.addr, reason: reason, err: err}
		}
	}
	return &Error{Op: op, Err: err, local: endedLocally(ctx, s.Code())}
}

// endedLocally reports whether the caller's context ended the call: canceled, or past its deadline
// (checked by the clock too, since grpc-go may report the deadline before the context's timer fires).
func endedLocally(ctx context.Context, code codes.Code) bool {
	switch code {
	case codes.Canceled:
		return ctx.Err() != nil
	case codes.DeadlineExceeded:
		dl, ok := ctx.Deadline()
		return ctx.Err() != nil || ok && !time.Now().Before(dl)
	}
	return false
}

// connectionFailure recognises the messages grpc-go gives when the transport, not the exporter,
// failed, and says why in a few words.
func connectionFailure(msg string) (string, bool) {
	if !strings.HasPrefix(msg, "connection error") && !strings.HasPrefix(msg, "error reading from server") &&
		!strings.Contains(msg, "connection closed") {
		return "", false
	}
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return "no such file", true
	case strings.Contains(msg, "connection refused"):
		return "connection refused (nothing listens on the socket)", true
	case strings.Contains(msg, "permission denied"):
		return "permission denied", true
	}
	return "connection lost (" + oneLine(msg) + ")", true
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
