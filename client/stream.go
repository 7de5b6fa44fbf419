package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
)

// MaxFrameSize is the largest payload [Stream.Write] puts in one DATA frame; larger writes are
// split. A write of at most MaxFrameSize bytes travels as exactly one frame.
const MaxFrameSize = 1 << 20

// RequestHeader is the gRPC metadata key whose JSON value says what a RouterService stream
// connects to.
const RequestHeader = "request"

// Stream errors, checked with errors.Is.
var (
	// ErrStreamClosed is returned by Read and Write after Close, and by Write after CloseWrite.
	ErrStreamClosed = errors.New("stream closed")
	// ErrStreamEnded is returned by Write when the exporter ended the stream while data was still
	// to be read (as writing to a socket the peer closed); Read returns the reason once the
	// remaining data is read.
	ErrStreamEnded = errors.New("the exporter ended the stream")
)

// Stream is a raw byte stream to a driver's stream method (RouterService.Stream), opened with
// [Client.Stream]. It is an io.ReadWriteCloser with a half-close ([Stream.CloseWrite]).
//
// One goroutine may read while another writes; Read is not safe for concurrent use by several
// goroutines, nor are Write and CloseWrite by several (they are serialised, but the order of
// concurrent writes is not defined). A goroutine owned by the Stream receives frames and hands
// them to Read one at a time, so a reader that stops reading stops the exporter (gRPC flow
// control) rather than filling memory.
type Stream struct {
	op     string
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	rpc    jumpstarterv1.RouterService_StreamClient

	// Read side. frames carries the payloads of DATA frames from the receiving goroutine to
	// Read; it is closed when the exporter will send no more data, after readErr is set (nil
	// meaning io.EOF). done is closed when the RPC is over, after finalErr is set.
	frames   chan *protocol.Frame
	readErr  error
	done     chan struct{}
	finalErr error
	pending  *protocol.Frame // the frame Read is handing out; nil or with unread data

	// Write side, serialised by wmu.
	wmu         sync.Mutex
	writeClosed bool

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

// streamRequest is the JSON value of the request header for a driver stream.
type streamRequest struct {
	Kind   string `json:"kind"`
	UUID   string `json:"uuid"`
	Method string `json:"method"`
}

// Stream opens a byte stream to method of the driver with the given uuid (a method of kind
// [KindStream], such as a serial port's or a network driver's "connect").
//
// Stream returns once the exporter has accepted the stream (sent its headers); a stream it
// refuses fails here with an [*Error] (e.g. not found for an unknown method). ctx bounds the whole
// stream: cancelling it ends the stream as Close does. Close the stream when done.
func (c *Client) Stream(ctx context.Context, uuid, method string) (*Stream, error) {
	op := c.opName(uuid, method)
	req, err := json.Marshal(streamRequest{Kind: "driver", UUID: uuid, Method: method})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s, _, err := c.open(ctx, op, req)
	return s, err
}

// uploadRequest is the JSON value of the request header for an upload.
type uploadRequest struct {
	Kind     string  `json:"kind"`
	UUID     string  `json:"uuid"`
	Encoding *string `json:"x_jmp_content_encoding"`
}

// ResourceHeader is the exporter's response header that carries an upload's handle.
const ResourceHeader = "resource"

// Upload opens an upload (a resource stream) for the driver with the given uuid, as
// Jumpstarter's clients send a flasher's image: write the bytes to the returned stream and
// CloseWrite at their end, while a call passes handle (the object the exporter answered) as the
// argument of a method that takes an upload, such as a flasher's flash(handle, target). The
// bytes travel as they are (no content encoding). Close the stream when done.
func (c *Client) Upload(ctx context.Context, uuid string) (s *Stream, handle map[string]any, err error) {
	op := c.opName(uuid, "upload")
	req, err := json.Marshal(uploadRequest{Kind: "resource", UUID: uuid})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	s, md, err := c.open(ctx, op, req)
	if err != nil {
		return nil, nil, err
	}
	v := md.Get(ResourceHeader)
	if len(v) == 0 || json.Unmarshal([]byte(v[0]), &handle) != nil || handle == nil {
		_ = s.Close()
		return nil, nil, fmt.Errorf("%s: the exporter answered no resource handle (%q)", op, v)
	}
	return s, handle, nil
}

// open opens a RouterService stream with the request header req and waits for the exporter to
// accept it, returning its response header.
func (c *Client) open(ctx context.Context, op string, req []byte) (*Stream, metadata.MD, error) {
	ctx, cancel := context.WithCancel(ctx)
	ctx = metadata.AppendToOutgoingContext(ctx, RequestHeader, string(req))
	rpc, err := jumpstarterv1.NewRouterServiceClient(c.conn).Stream(ctx)
	if err != nil {
		cancel()
		return nil, nil, c.wrap(ctx, op, err)
	}
	// Header blocks until the exporter accepts the stream or refuses it; a refusal ends the RPC
	// without headers (nil, nil) and its status comes from Recv.
	md, err := rpc.Header()
	if err == nil && md == nil {
		_, err = rpc.Recv()
		if errors.Is(err, io.EOF) {
			err = status.Error(codes.Unknown, "the exporter ended the stream before opening it")
		}
	}
	if err != nil {
		cancel()
		return nil, nil, c.wrap(ctx, op, err)
	}
	s := &Stream{
		op:     op,
		c:      c,
		ctx:    ctx,
		cancel: cancel,
		rpc:    rpc,
		frames: make(chan *protocol.Frame),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	go s.receive()
	return s, md, nil
}

// receive owns rpc.Recv: it hands DATA payloads to Read until the exporter's GOAWAY or the end
// of the RPC, then keeps receiving until the RPC is over to learn its final status.
func (s *Stream) receive() {
	defer close(s.done)
	for {
		f := new(protocol.Frame)
		if err := s.rpc.RecvMsg(f); err != nil {
			s.readErr = s.endError(err, false)
			s.finalErr = s.readErr
			close(s.frames)
			return
		}
		switch f.Kind() {
		case protocol.KindData:
			if f.Len() == 0 {
				continue // nothing to deliver; Read must not return 0, nil
			}
			select {
			case s.frames <- f:
			case <-s.ctx.Done():
				f.Free()
				s.readErr = s.endError(status.FromContextError(s.ctx.Err()).Err(), false)
				s.finalErr = s.readErr
				close(s.frames)
				return
			}
		case protocol.KindGoaway:
			close(s.frames) // readErr nil: io.EOF
			s.drain()
			return
		case protocol.KindRST:
			s.readErr = &Error{Op: s.op, Err: status.Error(codes.Aborted, "the exporter reset the stream")}
			s.finalErr = s.readErr
			close(s.frames)
			s.cancel() // a reset ends both directions
			return
		default:
			f.Free() // PING and unknown frame types carry nothing for the reader
		}
	}
}

// drain receives after the exporter's GOAWAY until the RPC is over, to learn how it ended.
func (s *Stream) drain() {
	for {
		f := new(protocol.Frame)
		err := s.rpc.RecvMsg(f)
		f.Free()
		if err != nil {
			s.finalErr = s.endError(err, true)
			return
		}
	}
}

// endError turns the end of the RPC into the error Read (or Write) reports: nil for a normal end
// (the exporter's ABORTED or OK after its GOAWAY, OK without one), ErrStreamClosed after Close.
func (s *Stream) endError(err error, afterGoaway bool) error {
	if s.isClosed() {
		return fmt.Errorf("%s: %w", s.op, ErrStreamClosed)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	if afterGoaway && status.Code(err) == codes.Aborted {
		return nil
	}
	return s.c.wrap(s.ctx, s.op, err)
}

// Read reads the data the driver sent. It returns io.EOF after the exporter's GOAWAY (the driver
// will send no more), and any other end of the stream as an error saying why (an [*Error], e.g.
// "serial.connect: unavailable: driver \"serial\" exited"). Frame boundaries are not kept: use
// [Stream.ReadFrame] for them.
func (s *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f, err := s.nextFrame()
	if err != nil {
		return 0, err
	}
	n, _ := f.Read(p)
	if f.Len() == 0 {
		f.Free()
		s.pending = nil
	}
	return n, nil
}

// ReadFrame returns the payload of the next DATA frame whole, with the errors of [Stream.Read].
// Zero-length frames are skipped. Do not mix it with Read on a partly read frame: Read's
// remainder is returned first.
func (s *Stream) ReadFrame() ([]byte, error) {
	f, err := s.nextFrame()
	if err != nil {
		return nil, err
	}
	s.pending = nil
	return f.Bytes(), nil
}

// nextFrame returns the frame Read is handing out, or the next one, which
// it makes the one Read hands out.
func (s *Stream) nextFrame() (*protocol.Frame, error) {
	if s.pending != nil {
		return s.pending, nil
	}
	f, ok := <-s.frames
	if !ok {
		if s.readErr != nil {
			return nil, s.readErr
		}
		return nil, io.EOF
	}
	s.pending = f
	return f, nil
}

// Write sends p to the driver, in DATA frames of at most [MaxFrameSize] bytes; an empty p sends
// nothing. It blocks while the exporter does not take more (flow control). After CloseWrite or
// Close it returns ErrStreamClosed; when the exporter has ended the stream it returns why (or
// ErrStreamEnded while the reason is still behind unread data).
func (s *Stream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return 0, s.writeClosedErr()
	}
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+MaxFrameSize)]
		if err := s.send(protocol.Data(chunk)); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return n, nil
}

// send sends f, which it consumes, as Write does.
func (s *Stream) send(f *protocol.Frame) error {
	defer f.Free()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeClosedErr(); err != nil {
		return err
	}
	if err := s.rpc.SendMsg(f); err != nil {
		return s.sendError(err)
	}
	return nil
}

// writeClosedErr is what a write gets after CloseWrite or Close (ErrStreamClosed), nil before.
// The caller holds wmu.
func (s *Stream) writeClosedErr() error {
	if s.writeClosed || s.isClosed() {
		return fmt.Errorf("%s: write: %w", s.op, ErrStreamClosed)
	}
	return nil
}

// sendError explains a failed Send. grpc-go reports io.EOF when the RPC is over; the status then
// comes from the receiving side.
func (s *Stream) sendError(err error) error {
	if s.isClosed() {
		return fmt.Errorf("%s: write: %w", s.op, ErrStreamClosed)
	}
	if !errors.Is(err, io.EOF) {
		return s.c.wrap(s.ctx, s.op, err)
	}
	select {
	case <-s.done:
		if s.finalErr != nil {
			return s.finalErr
		}
	default:
	}
	return fmt.Errorf("%s: write: %w", s.op, ErrStreamEnded)
}

// CloseWrite tells the driver that no more data will come (GOAWAY, then the end of the client's
// half of the RPC); data from the driver still arrives. It is safe to call more than once.
func (s *Stream) CloseWrite() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeClosed || s.isClosed() {
		return nil
	}
	s.writeClosed = true
	err := s.rpc.SendMsg(protocol.Control(protocol.KindGoaway))
	if errors.Is(err, io.EOF) {
		return nil // the exporter already ended the stream: nothing more could go anyway
	}
	if err != nil {
		return s.sendError(err)
	}
	if err := s.rpc.CloseSend(); err != nil {
		return s.sendError(err)
	}
	return nil
}

// Close ends the stream at once in both directions (cancelling the RPC) and waits for its
// receiving goroutine. A blocked Read or Write returns ErrStreamClosed. Data written but not yet
// taken by the exporter may be lost: for an orderly end, call CloseWrite, read to io.EOF and wait
// for [Stream.Done] first. It is safe to call more than once and always returns nil.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		<-s.done
	})
	return nil
}

// Done returns a channel closed when the stream is over in both directions: the exporter ended
// the RPC, or the stream was closed or its context cancelled. Nothing more can be written then.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err returns how the stream ended once [Stream.Done] is closed: nil for a normal end, the
// error otherwise (as Read reports it). It returns nil while the stream is open.
func (s *Stream) Err() error {
	select {
	case <-s.done:
		return s.finalErr
	default:
		return nil
	}
}

func (s *Stream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}
