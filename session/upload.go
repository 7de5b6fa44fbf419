package session

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// offered is a client's upload waiting for the call whose arguments name
// its handle (a resource stream of jumpstarter.v1), then read by that call.
type offered struct {
	handle string
	body   host.FrameSource
	sink   host.FrameSink // where what the driver writes goes (a download)

	claimed chan struct{} // closed when a call takes it
	done    chan struct{} // closed when the call is over with it
	err     error         // why it broke off; set before done is closed

	downloadErr error // why what the driver wrote did not reach the client whole; set before done is closed
	once        sync.Once
}

// finish records how the upload ended (the first time only) and releases
// its stream.
func (o *offered) finish(err error) {
	o.once.Do(func() {
		o.err = err
		close(o.done)
	})
}

// Offer registers a client's resource to the instance uuid, under a new
// handle (a random UUID): a later call whose arguments name the handle reads
// body (the client's upload) and writes to sink (a download; the sink is
// ended, see host.FrameSink, once the resource reached the driver). wait blocks
// until that call is over with the resource (nil, or the error that broke it
// off), or until ctx (the client's resource stream) or the session ends
// first; the handle is gone then. A resource counts against the session's
// byte streams.
func (s *Session) Offer(ctx context.Context, uuid string, body host.FrameSource, sink host.FrameSink) (handle string, wait func() error, err error) {
	if _, err := s.Instance(uuid); err != nil {
		return "", nil, err
	}
	ctx, done, err := s.begin(ctx, stream)
	if err != nil {
		return "", nil, err
	}
	o := &offered{handle: newUUID(), body: body, sink: sink, claimed: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	if s.uploads == nil {
		s.uploads = map[string]*offered{}
	}
	s.uploads[o.handle] = o
	s.mu.Unlock()
	wait = func() error {
		defer done()
		select {
		case <-o.claimed:
		case <-ctx.Done():
			if s.withdraw(o) {
				return s.cause(ctx, ctx.Err())
			}
		}
		<-o.done
		return o.err
	}
	return o.handle, wait, nil
}

// withdraw forgets o unless a call claimed it, and says whether it did.
func (s *Session) withdraw(o *offered) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-o.claimed:
		return false
	default:
	}
	delete(s.uploads, o.handle)
	return true
}

// claim finds the upload handles among a call's arguments (each a JSON
// object {"kind": "client_stream", "uuid": ...}), takes their uploads and
// returns the arguments as the driver gets them (the same, with the
// handle's x_jmp_content_encoding null: the exporter decoded the bytes) and
// the uploads to relay. The caller finishes every upload returned.
func (s *Session) claim(args []*structpb.Value) ([]*structpb.Value, []*offered, error) {
	var (
		out   []*structpb.Value
		taken []*offered
	)
	for i, a := range args {
		uuid, ok := handleUUID(a)
		if !ok {
			continue
		}
		s.mu.Lock()
		o := s.uploads[uuid]
		if o != nil {
			delete(s.uploads, uuid)
			close(o.claimed)
		}
		s.mu.Unlock()
		if o == nil {
			for _, t := range taken {
				t.finish(nil)
			}
			return nil, nil, status.Errorf(codes.InvalidArgument,
				"argument %d: no upload %s in this session (a handle serves one call, in the session whose exporter made it)", i+1, uuid)
		}
		taken = append(taken, o)
		if out == nil {
			out = append([]*structpb.Value(nil), args...)
		}
		fields := make(map[string]*structpb.Value, len(a.GetStructValue().GetFields()))
		for k, v := range a.GetStructValue().GetFields() {
			fields[k] = v
		}
		fields["x_jmp_content_encoding"] = structpb.NewNullValue()
		out[i] = structpb.NewStructValue(&structpb.Struct{Fields: fields})
	}
	if out == nil {
		return args, nil, nil
	}
	return out, taken, nil
}

// handleUUID returns the uuid of an upload handle argument.
func handleUUID(v *structpb.Value) (string, bool) {
	f := v.GetStructValue().GetFields()
	if f["kind"].GetStringValue() != "client_stream" {
		return "", false
	}
	uuid := f["uuid"].GetStringValue()
	return uuid, uuid != ""
}

// hostUploads describes taken uploads for the host.
func hostUploads(taken []*offered) []host.Upload {
	ups := make([]host.Upload, len(taken))
	for i, o := range taken {
		up := host.Upload{UUID: o.handle, Body: o.body, Done: o.finish}
		if o.sink != nil {
			up.Sink = endRecorder{o}
		}
		ups[i] = up
	}
	return ups
}

// endRecorder passes a download on to the offered resource's sink and
// keeps how it ended.
type endRecorder struct{ o *offered }

func (r endRecorder) Send(f *protocol.Frame) error { return r.o.sink.Send(f) }

func (r endRecorder) End(err error) {
	r.o.downloadErr = err
	r.o.sink.End(err)
}

// brokenDownload returns why a download of a call that succeeded did not
// reach its client whole: the driver may finish writing into the
// flow-control windows before the client's side fails, and the call must
// not look successful then.
func brokenDownload(taken []*offered) error {
	for _, o := range taken {
		select {
		case <-o.done:
			if o.downloadErr != nil {
				return o.downloadErr
			}
		default:
		}
	}
	return nil
}

// brokenUpload returns the error that broke off one of the uploads, if any:
// when a call that read an upload fails, that is why.
func brokenUpload(taken []*offered) error {
	for _, o := range taken {
		select {
		case <-o.done:
			if o.err != nil {
				return o.err
			}
		default:
		}
	}
	return nil
}

// newUUID returns a random (version 4) UUID, as upstream's handles are.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
