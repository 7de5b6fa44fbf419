package protocol

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Codec is the gRPC codec of every hop. It encodes protobuf messages as
// grpc-go's own codec does, but in buffers from [Shared] (grpc-go's codec
// uses the default pool, which clears every buffer it hands out), and it
// sends and receives a [*Frame] as its encoding, without copying.
//
// Its name is "proto", so peers see ordinary protobuf on the wire.
var Codec encoding.CodecV2 = codec{}

type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*Frame); ok {
		return f.marshal(), nil
	}
	m := message(v)
	if m == nil {
		return nil, fmt.Errorf("wire: cannot marshal %T: not a protobuf message", v)
	}
	size := proto.Size(m) // computes and caches the sizes UseCachedSize reuses
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	bp := Shared.Get(size)
	b, err := opts.MarshalAppend((*bp)[:0], m)
	if err != nil {
		Shared.Put(bp)
		return nil, err
	}
	*bp = b
	return mem.BufferSlice{mem.NewBuffer(bp, Shared)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if t, ok := v.(*decodeTarget); ok {
		// Kept for RegisterService to report: grpc-go would answer an
		// error from here with INTERNAL itself.
		t.err = c.Unmarshal(data, t.m)
		return nil
	}
	if f, ok := v.(*Frame); ok {
		return f.unmarshal(data)
	}
	m := message(v)
	if m == nil {
		return fmt.Errorf("wire: cannot unmarshal into %T: not a protobuf message", v)
	}
	buf := data.MaterializeToBuffer(Shared)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// message is v as a protobuf message of the current API, or nil.
func message(v any) proto.Message {
	switch v := v.(type) {
	case protoadapt.MessageV2:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}
