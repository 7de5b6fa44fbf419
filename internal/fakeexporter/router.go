package fakeexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// StreamConn is the driver's end of a byte stream opened through the fake's RouterService.
type StreamConn struct {
	rpc        jumpstarterv1.RouterService_StreamServer
	goawaySent bool
	recvDone   bool
}

// Recv returns the payload of the client's next DATA frame (zero-length payloads included). It
// returns io.EOF once the client sent GOAWAY or half-closed, and an error when it reset the
// stream or went away. PING frames are skipped.
func (c *StreamConn) Recv() ([]byte, error) {
	if c.recvDone {
		return nil, io.EOF
	}
	for {
		m, err := c.rpc.Recv()
		if err != nil {
			c.recvDone = true
			return nil, err
		}
		switch m.GetFrameType() {
		case jumpstarterv1.FrameType_FRAME_TYPE_DATA:
			return m.GetPayload(), nil
		case jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY:
			c.recvDone = true
			return nil, io.EOF
		case jumpstarterv1.FrameType_FRAME_TYPE_RST_STREAM:
			c.recvDone = true
			return nil, status.Error(codes.Aborted, "the client reset the stream")
		}
	}
}

// Send sends p as one DATA frame.
func (c *StreamConn) Send(p []byte) error {
	return c.SendFrame(jumpstarterv1.FrameType_FRAME_TYPE_DATA, p)
}

// SendFrame sends one frame of any type.
func (c *StreamConn) SendFrame(t jumpstarterv1.FrameType, p []byte) error {
	if t == jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY {
		c.goawaySent = true
	}
	return c.rpc.Send(&jumpstarterv1.StreamResponse{FrameType: t, Payload: p})
}

// CloseSend sends GOAWAY (no more data from the driver) once; the client may still send.
func (c *StreamConn) CloseSend() error {
	if c.goawaySent {
		return nil
	}
	return c.SendFrame(jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY, nil)
}

// Echo is a Method.Connect that sends every frame back as it arrives and ends when the client
// half-closes.
func Echo(_ context.Context, c *StreamConn) error {
	for {
		p, err := c.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.Send(p); err != nil {
			return err
		}
	}
}

// Emit returns a Method.Connect that sends each of frames as one DATA frame (empty ones
// included) and ends the stream without reading what the client sends.
func Emit(frames ...[]byte) func(context.Context, *StreamConn) error {
	return func(_ context.Context, c *StreamConn) error {
		for _, f := range frames {
			if err := c.Send(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// FailAfter returns a Method.Connect that sends data as one DATA frame and then fails the stream
// with err (no GOAWAY), as a driver that dies mid-stream.
func FailAfter(data []byte, err error) func(context.Context, *StreamConn) error {
	return func(_ context.Context, c *StreamConn) error {
		if serr := c.Send(data); serr != nil {
			return serr
		}
		return err
	}
}

// Stream implements jumpstarterv1.RouterServiceServer: it finds the method named by the request
// header and runs its Connect. A Connect that returns nil ends the stream as an exporter does
// (GOAWAY if not sent yet, then status ABORTED); an error ends it with that error.
func (e *Exporter) Stream(rpc jumpstarterv1.RouterService_StreamServer) error {
	uuid, method, err := parseRequest(rpc.Context())
	if err != nil {
		return err
	}
	m, _, err := e.find(uuid, method, nil)
	if err != nil {
		return err
	}
	if m.Connect == nil {
		return status.Errorf(codes.Unimplemented, "method %q is not a byte stream", m.Name)
	}
	if err := rpc.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	e.mu.Lock()
	e.streams++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.streams--
		e.mu.Unlock()
	}()
	c := &StreamConn{rpc: rpc}
	if err := m.Connect(rpc.Context(), c); err != nil {
		return err
	}
	if err := c.CloseSend(); err != nil {
		return err
	}
	return status.Error(codes.Aborted, "stream ended by the driver")
}

// parseRequest reads the request header of a driver stream strictly.
func parseRequest(ctx context.Context) (uuid, method string, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("request")
	if len(v) != 1 {
		return "", "", status.Errorf(codes.InvalidArgument, "a stream needs one request header, got %d", len(v))
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v[0])))
	dec.DisallowUnknownFields()
	var r struct {
		Kind, UUID, Method string
	}
	if err := dec.Decode(&r); err != nil {
		return "", "", status.Errorf(codes.InvalidArgument, "stream request header %q: %v", v[0], err)
	}
	if r.Kind != "driver" || r.UUID == "" || r.Method == "" {
		return "", "", status.Errorf(codes.InvalidArgument, "stream request header %q: want kind driver, uuid and method", v[0])
	}
	return r.UUID, r.Method, nil
}

// OpenStreams returns the number of byte streams in progress.
func (e *Exporter) OpenStreams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.streams
}
