package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/client"
)

// writeJSON writes v as one line of compact JSON. Under -o json every command writes its
// documents this way, one per line (docs/cli-json.md), so that a stream (jw status -w, jw logs
// -f, a streaming call) and a single answer read alike.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// errorJSON is an error under -o json, written to stderr:
// {"error":{"code":"invalid_argument","message":"relay.on: invalid argument: ..."}}.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	// Code says what kind of error it is: a gRPC code in snake case ("not_found",
	// "unavailable", ...) when the exporter answered with one, "usage" for a wrong command line,
	// "unreachable" when no exporter answers, "no_exporter" when none is named, "unknown"
	// otherwise.
	Code string `json:"code"`
	// Message is the text jw prints without -o json (after "jw: ").
	Message string `json:"message"`
}

// errNoMethod marks the errors for a method the driver does not have (errorCode: not_found).
var errNoMethod = errors.New("no such method")

// notFound is an error whose text is msg, marked with errNoMethod.
type notFound struct{ msg string }

func (e notFound) Error() string        { return e.msg }
func (e notFound) Is(target error) bool { return target == errNoMethod }

// reworded is an error that says msg but wraps err, so that errors.Is still sees err.
type reworded struct {
	msg string
	err error
}

func (e reworded) Error() string { return e.msg }
func (e reworded) Unwrap() error { return e.err }

// errorCode classifies err for errorJSON.
func errorCode(err error) string {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return "usage"
	case errors.Is(err, client.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, client.ErrNoHost):
		return "no_exporter"
	case errors.Is(err, client.ErrNoDriver), errors.Is(err, errNoMethod):
		return "not_found"
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.OK {
		return strings.ReplaceAll(client.CodeText(s.Code()), " ", "_")
	}
	return "unknown"
}
