package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"google.golang.org/protobuf/types/known/structpb"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// Call calls a unary method of the driver with the given uuid (DriverCall) and returns its result.
//
// Arguments are positional and travel as JSON values: nil, bools, strings, numbers (integers up to
// 2^53 in magnitude), slices, maps with string keys, json.Number, *structpb.Value, and structs
// (through their JSON encoding). The result is a natural Go value: nil, float64, string, bool,
// []any or map[string]any. An argument that cannot travel
// fails the call before anything is sent; a call the exporter fails returns an [*Error].
func (c *Client) Call(ctx context.Context, uuid, method string, args ...any) (any, error) {
	op := c.opName(uuid, method)
	values, err := toValues(op, args)
	if err != nil {
		return nil, err
	}
	resp, err := c.svc.DriverCall(ctx, &jumpstarterv1.DriverCallRequest{Uuid: uuid, Method: method, Args: values})
	if err != nil {
		return nil, c.wrap(ctx, op, err)
	}
	return fromValue(resp.GetResult()), nil
}

// StreamingCall calls a streaming method of the driver with the given uuid (StreamingDriverCall)
// and yields its results as they arrive, converted as in [Client.Call]. The call starts when the
// loop starts; breaking out of the loop cancels it. An error is yielded once, last.
func (c *Client) StreamingCall(ctx context.Context, uuid, method string, args ...any) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		op := c.opName(uuid, method)
		values, err := toValues(op, args)
		if err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.svc.StreamingDriverCall(ctx, &jumpstarterv1.StreamingDriverCallRequest{Uuid: uuid, Method: method, Args: values})
		if err != nil {
			yield(nil, c.wrap(ctx, op, err))
			return
		}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, c.wrap(ctx, op, err))
				return
			}
			if !yield(fromValue(resp.GetResult()), nil) {
				return
			}
		}
	}
}

func toValues(op string, args []any) ([]*structpb.Value, error) {
	values := make([]*structpb.Value, len(args))
	for i, a := range args {
		v, err := toValue(a)
		if err != nil {
			return nil, fmt.Errorf("%s: argument %d: %w", op, i+1, err)
		}
		values[i] = v
	}
	return values, nil
}

// fromValue turns a result into a natural Go value; a missing result is nil.
func fromValue(v *structpb.Value) any {
	if v == nil {
		return nil
	}
	return v.AsInterface()
}
