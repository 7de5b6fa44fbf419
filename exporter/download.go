package exporter

import (
	"bufio"
	"fmt"
	"io"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// downloadSink passes what a driver writes on a resource stream (a
// download: a dump, a storage device's contents) to the client that opened
// it. Frames pass as they come, unless the client asked for the data
// compressed: the exporter accepted that encoding when the stream opened,
// so it compresses here (as upstream's exporter does on the driver's side).
// One goroutine at a time calls Send and End (the host's relay), and
// finish after them.
type downloadSink struct {
	cs       jumpstarterv1.RouterService_StreamServer
	encoding *string

	enc    io.WriteCloser // the compressor, made at the first frame
	out    *bufio.Writer  // gathers the compressor's output into frames
	ended  error          // what End said
	closer func()         // releases the compressor's memory
}

// downloadFrame is the payload size compressed output is gathered into.
const downloadFrame = 256 << 10

func (d *downloadSink) Send(f *protocol.Frame) error {
	if d.encoding == nil {
		if err := d.cs.SendMsg(f); err != nil {
			return status.Errorf(codes.Canceled, "the client's download broke off: %v", status.Convert(err).Message())
		}
		return nil
	}
	defer f.Free()
	if d.enc == nil {
		d.out = bufio.NewWriterSize(frameWriter{d.cs}, downloadFrame)
		enc, closer, err := encoder(*d.encoding, d.out)
		if err != nil {
			return err
		}
		d.enc, d.closer = enc, closer
	}
	if _, err := f.WriteTo(d.enc); err != nil {
		return status.Errorf(codes.Canceled, "the client's download broke off: %v", status.Convert(err).Message())
	}
	return nil
}

func (d *downloadSink) End(err error) { d.ended = err }

// finish completes the download once the driver is over with the resource:
// it returns why the download is incomplete, or flushes the compressor.
func (d *downloadSink) finish() error {
	if d.ended != nil {
		return d.ended
	}
	if d.enc == nil {
		return nil
	}
	err := d.enc.Close()
	if err == nil {
		err = d.out.Flush()
	}
	if err != nil {
		return status.Errorf(codes.Canceled, "the client's download broke off: %v", status.Convert(err).Message())
	}
	return nil
}

// release frees the compressor, whatever happened.
func (d *downloadSink) release() {
	if d.closer != nil {
		d.closer()
		d.closer = nil
	}
}

// frameWriter sends each write as one DATA frame.
type frameWriter struct {
	cs jumpstarterv1.RouterService_StreamServer
}

func (w frameWriter) Write(p []byte) (int, error) {
	if err := w.cs.SendMsg(protocol.Data(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// encoder returns a writer that compresses into w in encoding, and what
// releases its memory. bzip2 has no encoder in Go's standard library or in
// jumpwire's dependencies: a download asked for in bz2 fails with a
// sentence that names the encodings that work.
func encoder(encoding string, w io.Writer) (io.WriteCloser, func(), error) {
	switch encoding {
	case "gzip":
		return gzip.NewWriter(w), nil, nil
	case "xz":
		xw, err := xz.NewWriter(w)
		return xw, nil, err
	case "zstd":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zw, func() { _ = zw.Close() }, nil
	case "bz2":
		return nil, nil, status.Error(codes.Unimplemented,
			"the exporter cannot compress a download with bz2; ask for gzip, xz or zstd, or none")
	}
	return nil, nil, fmt.Errorf("exporter: unknown content encoding %q", encoding)
}
