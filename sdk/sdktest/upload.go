package sdktest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/metadata"
)

// Upload sends what r holds to the instance as the exporter hands a client's
// upload to a driver, and returns the handle to pass as the argument of a
// method that takes an [sdk.Resource]. The bytes flow as the method reads
// them, until r's EOF; an error from r breaks the upload off, as a client
// that goes away does. wait returns once the driver is over with the upload,
// with r's error if any.
func (i *Instance) Upload(ctx context.Context, r io.Reader) (handle map[string]any, wait func() error, err error) {
	uuid, s, cancel, err := i.openResource(ctx)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- send(s, r)
	}()
	handle = map[string]any{"kind": "client_stream", "uuid": uuid, "x_jmp_content_encoding": nil}
	return handle, func() error { return <-done }, nil
}

// resourceContext is ctx with the metadata the exporter opens a resource
// stream with.
func resourceContext(ctx context.Context, uuid string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, protocol.ResourceHeader, uuid,
		protocol.HostMinorHeader, strconv.Itoa(protocol.Minor))
}

// send sends r's bytes, then GOAWAY, and waits for the driver to end the
// stream. An error from r resets the stream instead.
func send(s pluginv1.Driver_StreamClient, r io.Reader) error {
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := s.Send(&pluginv1.Frame{Payload: buf[:n]}); err != nil {
				break // the driver is over with the upload
			}
		}
		if errors.Is(rerr, io.EOF) {
			if err := s.Send(&pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY}); err == nil {
				_ = s.CloseSend()
			}
			break
		}
		if rerr != nil {
			_ = s.Send(&pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_RST_STREAM})
			return fmt.Errorf("sdktest: upload: %w", rerr)
		}
	}
	for {
		if _, err := s.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// Download opens a resource for a method that takes an [sdk.Download], as
// the exporter does for a client that receives a dump, and returns the
// handle to pass as that argument. What the method writes is written to w
// as it arrives. wait returns once the stream is over: nil when the method
// completed the download, the stream's error when it failed or broke off
// (or w's error). Cancelling ctx is a client that goes away.
func (i *Instance) Download(ctx context.Context, w io.Writer) (handle map[string]any, wait func() error, err error) {
	uuid, s, cancel, err := i.openResource(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Nothing to upload: the client's half ends at once, as upstream's
	// client's does for a file it opened for writing.
	if err := s.Send(&pluginv1.Frame{Kind: pluginv1.FrameKind_FRAME_KIND_GOAWAY}); err == nil {
		_ = s.CloseSend()
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- receive(s, w)
	}()
	handle = map[string]any{"kind": "client_stream", "uuid": uuid, "x_jmp_content_encoding": nil}
	return handle, func() error { return <-done }, nil
}

// receive writes the DATA frames of s to w until the driver's GOAWAY and
// the end of the stream.
func receive(s pluginv1.Driver_StreamClient, w io.Writer) error {
	complete := false
	for {
		f, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if !complete {
				return errors.New("sdktest: download: the driver ended the stream without completing the download")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch f.GetKind() {
		case pluginv1.FrameKind_FRAME_KIND_DATA:
			if complete {
				return errors.New("sdktest: download: data after the driver completed the download")
			}
			if _, err := w.Write(f.GetPayload()); err != nil {
				return fmt.Errorf("sdktest: download: %w", err)
			}
		case pluginv1.FrameKind_FRAME_KIND_GOAWAY:
			complete = true
		case pluginv1.FrameKind_FRAME_KIND_RST_STREAM:
			return errors.New("sdktest: download: the driver reset the stream")
		}
	}
}

// openResource opens the stream of a new resource, as the exporter does for
// a call's handle, and waits until the driver's side is open.
func (i *Instance) openResource(ctx context.Context) (string, pluginv1.Driver_StreamClient, context.CancelFunc, error) {
	uuid := rand.Text()
	ctx, cancel := context.WithCancel(resourceContext(ctx, uuid))
	s, err := i.RPC.Stream(ctx)
	if err != nil {
		cancel()
		return "", nil, nil, err
	}
	if _, err := s.Header(); err != nil {
		cancel()
		return "", nil, nil, err
	}
	return uuid, s, cancel, nil
}
