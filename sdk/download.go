package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// Download is where a method writes data for a client (a flasher's dump, a
// storage device's contents): the mirror of a [Resource]. A method takes one
// by declaring a parameter of type Download; the client opens a resource to
// receive the data, passes its handle, and gets the bytes as the method
// writes them:
//
//	sdk.Export("dump", func(ctx context.Context, target sdk.Download, partition *string) error {
//		_, err := io.Copy(target, device)
//		return err
//	}, "Read the device into a client's file")
//
// Write returns once the bytes are on their way; it blocks while the client
// is behind, so the client's reading paces the method and nothing piles up
// in memory. The download is complete when the method returns nil: the
// client is then told the data has ended. When the method fails, the
// client's stream ends with an error instead, so a partial copy is never
// taken for a whole one. Write returns [ErrDownloadIncomplete] once the
// client went away or the call or the session ended. The SDK compresses
// nothing: a client that asked for a compressed file gets it compressed by
// the exporter. A handle serves one call, and the download is over when the
// method returns.
type Download interface {
	io.Writer
}

// ErrDownloadIncomplete is returned by a [Download]'s Write when the
// download broke off: the client went away, or the call or session ended.
var ErrDownloadIncomplete = errors.New("the download broke off (the client went away, or the call or session ended)")

// downloadsMinor is the plugin protocol minor version from which the
// exporter passes what a driver writes on a resource stream to the client.
const downloadsMinor = 4

var downloadType = reflect.TypeFor[Download]()

// download is a Download over a resource stream.
type download struct{ u *upload }

var _ io.ReaderFrom = (*download)(nil)

func (d *download) Write(p []byte) (int, error) {
	n, err := d.u.conn.Write(p)
	return n, d.broke(err)
}

// ReadFrom sends what it reads from r, each read as one frame, so io.Copy
// from a file to a Download copies each byte once, into gRPC's buffers.
func (d *download) ReadFrom(r io.Reader) (int64, error) {
	src := &sourceReader{r: r}
	n, err := d.u.conn.ReadFrom(src)
	if err != nil && (src.err == nil || !errors.Is(err, src.err)) {
		err = d.broke(err) // the stream failed, not the reader
	}
	return n, err
}

// sourceReader remembers the error its reader failed with, so ReadFrom can
// tell it from the stream's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// broke marks a failed send as the download breaking off. The stream's
// gRPC status is kept as text only, so the error kind a driver wraps this in
// is the one the client sees.
func (d *download) broke(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) && d.u.conn.ctx.Err() == nil {
		err = errors.New("the exporter ended the stream")
	}
	return fmt.Errorf("%w: %v", ErrDownloadIncomplete, err) //nolint:errorlint // the status as text: see above
}

// downloadArg reads the handle argument v and waits for its stream, as
// resourceArg does, and refuses an exporter that would drop the data.
func (t *uploads) downloadArg(ctx context.Context, v *structpb.Value, where string) (*upload, error) {
	u, err := t.resourceArg(ctx, v, where)
	if err != nil {
		return nil, err
	}
	if u.hostMinor < downloadsMinor {
		u.finish(nil)
		return nil, statusf(codes.FailedPrecondition,
			"%s: this exporter speaks plugin protocol %d.%d, which does not pass what a driver writes back to the client (%d.%d added downloads): upgrade jumpwire",
			where, protocol.Version, u.hostMinor, protocol.Version, downloadsMinor)
	}
	u.written = true
	return u, nil
}
