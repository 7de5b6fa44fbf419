package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// Resource is a client's upload (a flasher's image, a file for a storage
// device) handed to a method. A method takes one by declaring a parameter of
// type Resource; the client passes the handle its upload got, and the method
// reads the upload's bytes, already decompressed, as they arrive:
//
//	sdk.Export("flash", func(ctx context.Context, image sdk.Resource, target *string) error {
//		_, err := io.Copy(device, image)
//		return err
//	}, "Write an image to the device")
//
// Read returns io.EOF at the upload's end, and [ErrUploadIncomplete] when
// it broke off before (the client went away, the call or the session ended).
// The client sends only as fast as the method reads. A handle serves one
// call, and the upload is over when the method returns, read or not.
type Resource interface {
	io.Reader
	// Size returns the upload's size in bytes and true when it is known
	// before the upload ends. Jumpstarter's clients do not announce it, so
	// for their uploads it is unknown.
	Size() (int64, bool)
}

// ErrUploadIncomplete is returned by a [Resource]'s Read when the upload
// broke off before its end.
var ErrUploadIncomplete = errors.New("the upload broke off before its end (the client went away, or the call or session ended)")

var resourceType = reflect.TypeFor[Resource]()

// upload is one resource stream the exporter opened with the
// protocol.ResourceHeader: a Resource whose bytes arrive on it, or a
// Download whose bytes leave on it.
type upload struct {
	conn      *streamConn
	hostMinor int // the exporter's plugin protocol minor version, 0 when it did not say

	done    chan struct{} // closed when the method is over with it
	once    sync.Once
	written bool        // taken as a Download; set before the method runs
	failed  error       // how the method that wrote it failed; set before done is closed
	unwatch func() bool // stops closing it when the call that took it ends; set before the method runs
}

func (u *upload) Read(p []byte) (int, error) {
	n, err := u.conn.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %w", ErrUploadIncomplete, err)
	}
	return n, err
}

func (u *upload) Size() (int64, bool) { return 0, false }

// finish tells the upload's stream that the method is over with it, and
// how the method ended. A Download the method finished is ended with
// GOAWAY here, before the call's result leaves, so the exporter sees the
// data's end no later than the result.
func (u *upload) finish(methodErr error) {
	u.once.Do(func() {
		if u.unwatch != nil {
			u.unwatch()
		}
		if u.written {
			if methodErr == nil {
				methodErr = u.conn.CloseWrite()
			}
			u.failed = methodErr
		}
		close(u.done)
	})
}

// uploads matches the upload streams the exporter opens with the calls that
// name them: whichever of the two comes first waits for the other.
type uploads struct {
	mu    sync.Mutex
	slots map[string]chan *upload
}

// slot returns the rendezvous for uuid, making it when needed.
func (t *uploads) slot(uuid string) chan *upload {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.slots == nil {
		t.slots = map[string]chan *upload{}
	}
	ch, ok := t.slots[uuid]
	if !ok {
		ch = make(chan *upload, 1)
		t.slots[uuid] = ch
	}
	return ch
}

// drop forgets uuid's rendezvous once neither side waits on it.
func (t *uploads) drop(uuid string, ch chan *upload) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.slots[uuid] == ch && len(ch) == 0 {
		delete(t.slots, uuid)
	}
}

// take waits, under ctx, for the upload uuid.
func (t *uploads) take(ctx context.Context, uuid string) (*upload, error) {
	ch := t.slot(uuid)
	select {
	case u := <-ch:
		t.drop(uuid, ch)
		return u, nil
	case <-ctx.Done():
		t.drop(uuid, ch)
		return nil, ctx.Err()
	}
}

// serve serves one upload stream until the method that took it is over, or
// the exporter ends the stream.
func (t *uploads) serve(ctx context.Context, stream frameStream, uuid string, sendHeader func(metadata.MD) error) error {
	u := &upload{conn: newStreamConn(ctx, stream), done: make(chan struct{}), hostMinor: hostMinor(ctx)}
	defer u.conn.cancel()
	ch := t.slot(uuid)
	select {
	case ch <- u:
	default:
		return statusf(codes.AlreadyExists, "upload %s is already open", uuid)
	}
	if err := sendHeader(metadata.MD{}); err != nil {
		t.unoffer(uuid, ch, u)
		return err
	}
	select {
	case <-u.done:
		if u.failed != nil {
			// No GOAWAY: the exporter tells the client its download is
			// incomplete instead of letting it keep a truncated copy.
			return statusf(codes.Aborted, "the method failed before the end of its download: %v", u.failed)
		}
		return nil
	case <-u.conn.ctx.Done():
		t.unoffer(uuid, ch, u)
		if ctx.Err() != nil {
			return toStatus(ctx.Err())
		}
		// The call that took it ended while the method still reads or
		// writes it: ending the stream here releases a write that waits
		// for a client that does not read.
		return statusf(codes.Canceled, "the call that took upload %s ended before the method was over with it", uuid)
	}
}

// unoffer takes back u if no call took it.
func (t *uploads) unoffer(uuid string, ch chan *upload, u *upload) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case got := <-ch:
		if got != u {
			ch <- got
		}
	default:
	}
	if t.slots[uuid] == ch && len(ch) == 0 {
		delete(t.slots, uuid)
	}
}

// resourceArg reads the handle argument v (the JSON object a Jumpstarter
// client passes: {"kind": "client_stream", "uuid": ...}) and waits for its
// stream.
func (t *uploads) resourceArg(ctx context.Context, v *structpb.Value, where string) (*upload, error) {
	s := v.GetStructValue()
	if s == nil {
		return nil, statusf(codes.InvalidArgument, "%s: expected a resource handle (the object a client's upload returns), got %s", where, describeValue(v))
	}
	f := s.GetFields()
	kind := f["kind"].GetStringValue()
	uuid := f["uuid"].GetStringValue()
	switch {
	case kind == "presigned_request":
		return nil, statusf(codes.Unimplemented, "%s: presigned-request resources (the driver fetching a URL) are not supported; upload the data from the client", where)
	case kind != "client_stream" || uuid == "":
		return nil, statusf(codes.InvalidArgument, `%s: expected a resource handle {"kind": "client_stream", "uuid": ...}, got %s`, where, describeValue(v))
	}
	if enc := f["x_jmp_content_encoding"]; enc != nil && enc.GetKind() != nil {
		if _, isNull := enc.GetKind().(*structpb.Value_NullValue); !isNull {
			return nil, statusf(codes.InvalidArgument, "%s: upload %s is still %s-encoded; the exporter should have decoded it", where, uuid, enc.GetStringValue())
		}
	}
	u, err := t.take(ctx, uuid)
	if err != nil {
		return nil, statusf(codes.Canceled, "%s: waiting for upload %s: %v", where, uuid, err)
	}
	// The method's reads and writes end with its call (the exporter
	// cancels it when the client goes away, the session ends or the
	// instance stops), also when the client keeps the stream open and
	// sends or reads nothing.
	u.unwatch = context.AfterFunc(ctx, func() { _ = u.conn.Close() })
	return u, nil
}

// hostMinor returns the plugin protocol minor version the exporter announced
// on a resource stream (protocol.HostMinorHeader), or 0.
func hostMinor(ctx context.Context) int {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(protocol.HostMinorHeader)
	if len(v) == 0 {
		return 0
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// resourceHeader returns the upload uuid a Stream was opened for, if any.
func resourceHeader(md metadata.MD) (string, bool) {
	v := md.Get(protocol.ResourceHeader)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}
