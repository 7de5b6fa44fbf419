// Package grpcerr adds context to errors that cross a gRPC hop without
// losing their status: the code a driver chose is the code a client sees
// (containerd's errgrpc is the model). Never rebuild an error from
// status.Convert(err).Message(): that drops the code.
package grpcerr

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/status"
)

// Wrap returns err with the formatted context in front of its message. Its
// text is "context: message", where message is the status message when err
// carries a status (not grpc-go's "rpc error: code = ... desc = ..."); its
// status keeps err's code and details with that text as its message; and
// errors.Is and errors.As see err. Wrap(nil, ...) is nil.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &wrapped{prefix: fmt.Sprintf(format, args...), err: err}
}

type wrapped struct {
	prefix string
	err    error
}

func (w *wrapped) Error() string { return w.prefix + ": " + Message(w.err) }

func (w *wrapped) Unwrap() error { return w.err }

// GRPCStatus is err's status with the prefixed message.
func (w *wrapped) GRPCStatus() *status.Status {
	p := status.Convert(w.err).Proto()
	p.Message = w.Error()
	return status.FromProto(p)
}

// Message is what err says, without grpc-go's "rpc error: code = ..."
// framing when it carries a status.
func Message(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// Join joins errs (nils dropped) into one error whose text is their
// messages separated by "; " and whose status has the code of the first:
// the first failure decides what a client is told it was. Join of no
// errors is nil.
func Join(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return &joined{errs: kept}
}

type joined struct{ errs []error }

func (j *joined) Error() string {
	msgs := make([]string, len(j.errs))
	for i, err := range j.errs {
		msgs[i] = Message(err)
	}
	return strings.Join(msgs, "; ")
}

func (j *joined) Unwrap() []error { return j.errs }

// GRPCStatus has the first error's code and all the messages.
func (j *joined) GRPCStatus() *status.Status {
	p := status.Convert(j.errs[0]).Proto()
	p.Message = j.Error()
	return status.FromProto(p)
}
