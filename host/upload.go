package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Upload is a client's resource that a call uses: the driver receives it
// on a plugin-protocol Stream opened with protocol.ResourceHeader = UUID, the
// handle's uuid that the call's arguments name. The client's bytes (an
// upload) go to the driver on it, and what the driver writes on it (a
// download) comes back to Sink.
type Upload struct {
	// UUID is the upload handle's uuid.
	UUID string
	// Body yields the upload's plain (decoded) bytes as DATA frames, and
	// io.EOF at the upload's end. Any other error breaks the upload off: the
	// driver's read fails.
	Body FrameSource
	// Sink takes what the driver writes on the stream; nil drops it.
	Sink FrameSink
	// Done is called once, when the resource is over for the driver, with
	// the error that broke it off: the Body's (the upload) or the Sink's (the
	// download); nil when neither did.
	Done func(error)
}

// FrameSource yields DATA frames, which the caller owns (and sends or frees).
type FrameSource interface {
	Next() (*protocol.Frame, error)
}

// FrameSink takes what a driver writes to a client's resource (a download).
type FrameSink interface {
	// Send passes one DATA frame on to the client, and consumes it. It
	// blocks while the client is behind; an error ends the download (the
	// driver's writes fail from then on).
	Send(*protocol.Frame) error
	// End is called once, after the last Send: nil when the driver
	// completed what it wrote (its GOAWAY) or wrote nothing, else why the
	// download is incomplete.
	End(error)
}

// feed relays resources between the client and the driver while a call
// made with the returned context runs; stop ends the relays (the call is
// over; ok says it succeeded, so what the driver wrote is let through to its
// end first, see drain) and waits for them. When a relay cannot open its
// stream, the call's context is cancelled with the reason, as the driver
// would otherwise wait for the resource forever.
func (i *Instance) feed(ctx context.Context, uploads []Upload) (context.Context, func(ok bool)) {
	if len(uploads) == 0 {
		return ctx, func(bool) {}
	}
	callCtx, cancel := context.WithCancelCause(ctx)
	if m := i.proc.info.GetProtocolMinor(); m < uploadsMinor {
		// It would take the upload for a byte stream with no name.
		cancel(&openError{uuid: uploads[0].UUID, err: status.Errorf(codes.Unimplemented,
			"%s speaks plugin protocol 1.%d, which has no uploads (1.%d added them): rebuild it with a newer SDK",
			i.spec.Path, m, uploadsMinor)})
		for _, up := range uploads {
			if up.Sink != nil {
				up.Sink.End(nil)
			}
			up.Done(nil)
		}
		return callCtx, func(bool) { cancel(context.Canceled) }
	}
	// The relays outlive the call a little: what the driver wrote just
	// before it returned may still be on its way (see drain).
	relayCtx, stopRelays := context.WithCancel(ctx)
	var wg sync.WaitGroup
	relays := make([]*relay, len(uploads))
	for n, up := range uploads {
		r := &relay{up: up}
		r.lastFrame.Store(time.Now().UnixNano())
		relays[n] = r
		wg.Go(func() {
			err := r.run(relayCtx, i.proc.rpc)
			var open *openError
			if errors.As(err, &open) {
				cancel(open)
				err = nil
			}
			up.Done(err)
		})
	}
	return callCtx, func(ok bool) {
		if ok {
			drain(relays, &wg)
		}
		stopRelays()
		cancel(context.Canceled)
		wg.Wait()
	}
}

// uploadsMinor is the plugin protocol's minor version that added uploads.
const uploadsMinor = 1

// drainIdle is how long, once the call is over, a relay may wait for the
// driver without a frame before it is cut: a driver that wrote to the
// resource ends the stream right after its method returns (the Go SDK
// does; the Python host does once the driver leaves `resource()`), but one
// that never took the resource leaves it open.
var drainIdle = time.Second

// drain waits until every relay has ended by itself, or has waited for the
// driver for drainIdle; a relay passing a frame on to a slow client is never
// idle, so a download the driver completed reaches the client whole.
func drain(relays []*relay, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(drainIdle / 4)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		idle := true
		for _, r := range relays {
			if !r.ended.Load() && (r.sending.Load() || time.Since(time.Unix(0, r.lastFrame.Load())) < drainIdle) {
				idle = false
			}
		}
		if idle {
			return
		}
	}
}

// openError says the upload stream to the driver could not be opened.
type openError struct {
	uuid string
	err  error
}

func (e *openError) Error() string {
	return fmt.Sprintf("host: open upload %s to the driver: %v", e.uuid, e.err)
}
func (e *openError) Unwrap() error { return e.err }

// relay carries one resource between the client and the driver: the
// upload's frames to the driver in the calling goroutine, the driver's
// frames to the Sink in another. Frames pass as they come, one at a time:
// each side goes only as fast as the other takes (flow control), nothing is
// queued.
type relay struct {
	up Upload

	lastFrame atomic.Int64 // unix nanoseconds of the driver's last frame, for drain
	sending   atomic.Bool  // a frame is on its way to the client
	ended     atomic.Bool  // the driver's half is over
}

// run relays until the driver is over with the resource. It returns the
// error that broke the upload or the download off.
func (r *relay) run(ctx context.Context, rpc pluginv1.DriverClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	md := metadata.AppendToOutgoingContext(ctx, protocol.ResourceHeader, r.up.UUID,
		protocol.HostMinorHeader, strconv.Itoa(protocol.Minor))
	s, err := rpc.Stream(md)
	if err == nil {
		_, err = s.Header()
	}
	if err != nil {
		if r.up.Sink != nil {
			r.up.Sink.End(nil)
		}
		r.ended.Store(true)
		return &openError{uuid: r.up.UUID, err: err}
	}
	downErr := make(chan error, 1)
	go func() {
		defer r.ended.Store(true)
		err := r.down(ctx, s)
		if err != nil {
			cancel() // the driver's writes fail from now on
		}
		downErr <- err
	}()
	upErr := r.upload(s)
	if upErr != nil {
		cancel()
	}
	if err := <-downErr; err != nil && upErr == nil {
		return err
	}
	return upErr
}

// upload sends the Body's frames to the driver, then GOAWAY. It returns the
// Body's error when that broke the upload off.
func (r *relay) upload(s pluginv1.Driver_StreamClient) error {
	for {
		f, err := r.up.Body.Next()
		if f != nil {
			if s.SendMsg(f) != nil {
				return nil // the driver (or the call) is over with the upload
			}
		}
		if errors.Is(err, io.EOF) {
			if s.SendMsg(protocol.Control(protocol.KindGoaway)) == nil {
				_ = s.CloseSend()
			}
			return nil
		}
		if err != nil {
			_ = s.SendMsg(protocol.Control(protocol.KindRST))
			return err
		}
	}
}

// down passes the driver's frames to the Sink until the driver ends the
// stream, and ends the Sink with the download's outcome. It returns the
// Sink's error when the client could not take the data.
func (r *relay) down(ctx context.Context, s pluginv1.Driver_StreamClient) error {
	var (
		wrote, complete bool
		sinkErr         error
	)
	end := func(err error) {
		if r.up.Sink != nil {
			r.up.Sink.End(err)
		}
	}
	for {
		f := new(protocol.Frame)
		err := s.RecvMsg(f)
		r.lastFrame.Store(time.Now().UnixNano())
		if err != nil {
			switch {
			case sinkErr != nil:
				end(sinkErr)
			case complete, !wrote && (errors.Is(err, io.EOF) || ctx.Err() != nil):
				end(nil) // a completed download, or none (an upload)
			case errors.Is(err, io.EOF):
				end(status.Error(codes.Aborted, "the driver ended its download without completing it"))
			case ctx.Err() != nil:
				end(status.Error(codes.Aborted, "the download was cut off: the call or the session ended"))
			default:
				end(err)
			}
			return sinkErr
		}
		switch f.Kind() {
		case protocol.KindData:
			if sinkErr != nil || r.up.Sink == nil || complete {
				f.Free()
				continue
			}
			wrote = true
			r.sending.Store(true)
			sinkErr = r.up.Sink.Send(f)
			r.sending.Store(false)
			if sinkErr != nil {
				end(sinkErr) // run cancels the stream: the driver's writes fail
				return sinkErr
			}
		case protocol.KindGoaway:
			complete = true
			f.Free()
		case protocol.KindRST:
			f.Free()
			if !complete {
				end(status.Error(codes.Aborted, "the driver reset its download"))
				return nil
			}
		default:
			f.Free()
		}
	}
}
