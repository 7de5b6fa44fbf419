package exporter

import (
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/session"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Initial-metadata keys of a resource stream, as Jumpstarter's clients read
// them: the handle to pass to the driver, and the content encoding the
// exporter accepts as sent (the client decodes anything else itself).
const (
	ResourceHeader       = "resource"
	AcceptEncodingHeader = "x_jmp_accept_encoding"
)

// knownEncoding reports whether uploads may come encoded so: the four that
// Jumpstarter's clients use.
func knownEncoding(e string) bool {
	switch e {
	case "gzip", "xz", "bz2", "zstd":
		return true
	}
	return false
}

// resourceHandle is the handle a client passes to the driver for its upload.
type resourceHandle struct {
	Kind     string  `json:"kind"`
	UUID     string  `json:"uuid"`
	Encoding *string `json:"x_jmp_content_encoding"`
}

// serveUpload serves a resource stream (a client's upload): it registers
// the upload with the session, tells the client its handle in the initial
// metadata, and waits until a call that names the handle is over with it.
// The client's bytes are read only as the driver reads them (decoded here,
// so drivers get plain bytes). The client is then told the stream is over
// (GOAWAY, status ABORTED, as for a driver's byte stream).
func serveUpload(cs jumpstarterv1.RouterService_StreamServer, sess *session.Session, uuid string, encoding *string) error {
	body := &uploadBody{cs: cs}
	var src interface {
		Next() (*protocol.Frame, error)
	} = body
	if encoding != nil {
		d := &decodedBody{encoding: *encoding, raw: body}
		defer d.close() // once wait returns, nothing reads it any more
		src = d
	}
	sink := &downloadSink{cs: cs, encoding: encoding}
	defer sink.release()
	handle, wait, err := sess.Offer(cs.Context(), uuid, src, sink)
	if err != nil {
		return err
	}
	h, err := json.Marshal(resourceHandle{Kind: "client_stream", UUID: handle, Encoding: encoding})
	if err != nil {
		return fmt.Errorf("exporter: upload handle: %w", err)
	}
	md := metadata.Pairs(ResourceHeader, string(h))
	if encoding != nil {
		md.Set(AcceptEncodingHeader, *encoding)
	}
	if err := cs.SendHeader(md); err != nil {
		return wait() // the client is gone: its context's end withdraws the upload
	}
	if err := wait(); err != nil {
		return uploadStatus(err)
	}
	// What the driver wrote (a download) has reached the client; without
	// the GOAWAY that follows, a client knows its copy is incomplete.
	if err := sink.finish(); err != nil {
		return uploadStatus(err)
	}
	if err := cs.SendMsg(protocol.Control(protocol.KindGoaway)); err != nil {
		return err
	}
	return status.Error(codes.Aborted, "resource stream over")
}

// uploadStatus is the status an upload stream ends with when it broke off.
func uploadStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Canceled, err.Error())
}

// errUploadReset says the client reset its upload stream.
var errUploadReset = status.Error(codes.Canceled, "the client reset its upload")

// uploadBody yields the DATA frames of a client's upload stream as they
// arrived (not copied); io.EOF after the client's GOAWAY or half-close.
type uploadBody struct {
	cs  jumpstarterv1.RouterService_StreamServer
	err error
}

func (b *uploadBody) Next() (*protocol.Frame, error) {
	for b.err == nil {
		f := new(protocol.Frame)
		if err := b.cs.RecvMsg(f); err != nil {
			b.err = err
			if !errors.Is(err, io.EOF) {
				b.err = status.Errorf(codes.Canceled, "the client's upload broke off: %v", status.Convert(err).Message())
			}
			break
		}
		switch f.Kind() {
		case protocol.KindData:
			if f.Len() > 0 {
				return f, nil
			}
		case protocol.KindGoaway:
			b.err = io.EOF
		case protocol.KindRST:
			b.err = errUploadReset
		}
		f.Free() // PING, empty DATA, and the frames that end the upload
	}
	return nil, b.err
}

// uploadReader reads an upload's bytes, for a decompressor.
type uploadReader struct {
	body  *uploadBody
	cur   *protocol.Frame
	total int64 // bytes read
}

func (r *uploadReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.cur.Len() == 0 {
		if r.cur != nil {
			r.cur.Free()
			r.cur = nil
		}
		f, err := r.body.Next()
		if err != nil {
			return 0, err
		}
		r.cur = f
	}
	n, err := r.cur.Read(p)
	r.total += int64(n)
	return n, err
}

// decodedBody yields an encoded upload's decoded bytes as DATA frames. The
// decoder starts at the first Next: it reads the stream's header, which the
// client sends only after it has its handle.
type decodedBody struct {
	encoding string
	raw      *uploadBody
	src      *uploadReader
	frames   *protocol.FrameReader
	closer   func()
	err      error
}

func (d *decodedBody) Next() (*protocol.Frame, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.frames == nil {
		d.src = &uploadReader{body: d.raw}
		r, closer, err := decoder(d.encoding, d.src)
		if err != nil {
			d.err = d.decodeError(err)
			return nil, d.err
		}
		d.frames, d.closer = protocol.NewFrameReader(r), closer
	}
	f, err := d.frames.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			d.err = io.EOF
		} else {
			d.err = d.decodeError(err)
		}
		d.close()
	}
	return f, d.err
}

// close releases the decoder.
func (d *decodedBody) close() {
	if d.closer != nil {
		d.closer()
		d.closer = nil
	}
}

// decodeError says the upload could not be decoded, unless it broke off,
// or was empty: a client that receives a compressed download sends nothing.
func (d *decodedBody) decodeError(err error) error {
	if d.raw.err != nil && !errors.Is(d.raw.err, io.EOF) {
		return d.raw.err
	}
	if errors.Is(d.raw.err, io.EOF) && d.src.total == 0 {
		return io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return status.Errorf(codes.InvalidArgument, "the %s upload ended in the middle of its data", d.encoding)
	}
	return status.Errorf(codes.InvalidArgument, "the upload is not valid %s: %v", d.encoding, err)
}

// maxZstdWindow bounds the memory a zstd upload may ask for: 128 MiB, what
// zstd --long uses.
const maxZstdWindow = 128 << 20

// decoder returns a reader of r's bytes decoded from encoding, and what
// releases it.
func decoder(encoding string, r io.Reader) (io.Reader, func(), error) {
	switch encoding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { _ = zr.Close() }, nil
	case "xz":
		xr, err := xz.NewReader(r)
		return xr, nil, err
	case "bz2":
		return bzip2.NewReader(r), nil, nil
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("exporter: unknown content encoding %q", encoding)
}
