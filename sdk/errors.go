package sdk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error kinds. A driver wraps one of them (fmt.Errorf("...: %w", sdk.ErrUnavailable))
// to choose the status code a client sees; the message is the error's text.
// Errors wrapping none of them become UNKNOWN, except context errors (deadline
// and cancellation) and file-system errors, which map to their natural codes.
var (
	// ErrNotFound: the thing asked for does not exist (NOT_FOUND).
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: the driver does not support this (UNIMPLEMENTED).
	ErrUnsupported = errors.New("not supported")
	// ErrInvalidArgument: the arguments are wrong (INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnavailable: the device or something the driver needs cannot be reached (UNAVAILABLE).
	ErrUnavailable = errors.New("unavailable")
	// ErrIO: talking to the device failed (INTERNAL).
	ErrIO = errors.New("i/o error")
	// ErrBusy: the device is in use by someone else (FAILED_PRECONDITION).
	ErrBusy = errors.New("busy")
)

var kindCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrNotFound, codes.NotFound},
	{ErrUnsupported, codes.Unimplemented},
	{errors.ErrUnsupported, codes.Unimplemented},
	{ErrInvalidArgument, codes.InvalidArgument},
	{ErrUnavailable, codes.Unavailable},
	{ErrIO, codes.Internal},
	{ErrBusy, codes.FailedPrecondition},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
	{fs.ErrNotExist, codes.NotFound},
	{fs.ErrPermission, codes.PermissionDenied},
}

// Errorf returns an error of the given kind (one of the Err kinds above)
// whose message is only the formatted text: errors.Is(err, kind) holds, and
// the client sees the kind's status code with the message as written, not
// followed by the kind's own words.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Code returns the gRPC status code a client sees for err.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Code()
	}
	for _, k := range kindCodes {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	var ve *ValueError
	if errors.As(err, &ve) {
		return codes.InvalidArgument
	}
	return codes.Unknown
}

// toStatus converts a driver's error into the status a client sees. Errors
// that already carry a status keep it.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}

// statusf is a shorthand for the SDK's own errors.
func statusf(c codes.Code, format string, args ...any) error {
	return status.Error(c, fmt.Sprintf(format, args...))
}
