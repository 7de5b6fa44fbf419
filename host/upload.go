package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Upload is a client's upload that a call reads: the driver receives it on
// a plugin-protocol Stream opened with protocol.ResourceHeader = UUID, the
// handle's uuid that the call's arguments name.
type Upload struct {
	// UUID is the upload handle's uuid.
	UUID string
	// Body yields the upload's plain (decoded) bytes as DATA frames, and
	// io.EOF at the upload's end. Any other error breaks the upload off: the
	// driver's read fails.
	Body FrameSource
	// Done is called once, when the upload is over for the driver, with the
	// Body's error that broke it off (nil when it was read to its end, or the
	// driver was over with it first).
	Done func(error)
}

// FrameSource yields DATA frames, which the caller owns (and sends or frees).
type FrameSource interface {
	Next() (*protocol.Frame, error)
}

// feed relays uploads to the driver while a call made with the returned
// context runs; stop ends the relays (the call is over) and waits for them.
// When a relay cannot open its stream, the call's context is cancelled with
// the reason, as the driver would otherwise wait for the upload forever.
func (i *Instance) feed(ctx context.Context, uploads []Upload) (context.Context, func()) {
	if len(uploads) == 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if m := i.proc.info.GetProtocolMinor(); m < uploadsMinor {
		// It would take the upload for a byte stream with no name.
		cancel(&openError{uuid: uploads[0].UUID, err: status.Errorf(codes.Unimplemented,
			"%s speaks plugin protocol 1.%d, which has no uploads (1.%d added them): rebuild it with a newer SDK",
			i.spec.Path, m, uploadsMinor)})
		for _, up := range uploads {
			up.Done(nil)
		}
		return ctx, func() { cancel(context.Canceled) }
	}
	var wg sync.WaitGroup
	for _, up := range uploads {
		wg.Go(func() {
			err := relayUpload(ctx, i.proc.rpc, up)
			var open *openError
			if errors.As(err, &open) {
				cancel(open)
				err = nil
			}
			up.Done(err)
		})
	}
	return ctx, func() {
		cancel(context.Canceled)
		wg.Wait()
	}
}

// uploadsMinor is the plugin protocol's minor version that added uploads.
const uploadsMinor = 1

// openError says the upload stream to the driver could not be opened.
type openError struct {
	uuid string
	err  error
}

func (e *openError) Error() string {
	return fmt.Sprintf("host: open upload %s to the driver: %v", e.uuid, e.err)
}
func (e *openError) Unwrap() error { return e.err }

// relayUpload sends up's frames to the driver, then GOAWAY, and waits until
// the driver is over with it. Frames pass as they come, one at a time: the
// body is read only as fast as the driver reads (flow control), nothing is
// queued. It returns the Body's error when that broke the upload off.
func relayUpload(ctx context.Context, rpc pluginv1.DriverClient, up Upload) error {
	s, err := rpc.Stream(metadata.AppendToOutgoingContext(ctx, protocol.ResourceHeader, up.UUID))
	if err == nil {
		_, err = s.Header()
	}
	if err != nil {
		return &openError{uuid: up.UUID, err: err}
	}
	for {
		f, err := up.Body.Next()
		if f != nil {
			if s.SendMsg(f) != nil {
				return nil // the driver (or the call) is over with the upload
			}
		}
		if errors.Is(err, io.EOF) {
			if s.SendMsg(protocol.Control(protocol.KindGoaway)) == nil {
				_ = s.CloseSend()
			}
			break
		}
		if err != nil {
			_ = s.SendMsg(protocol.Control(protocol.KindRST))
			return err
		}
	}
	for {
		f := new(protocol.Frame)
		if s.RecvMsg(f) != nil {
			return nil
		}
		f.Free()
	}
}
