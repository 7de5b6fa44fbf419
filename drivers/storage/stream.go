package storage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Reply is one JSON line write_stream sends back: progress while writing,
// then either the result or the error.
type Reply struct {
	Progress *Progress `json:"progress,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Magic numbers of compressed images.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzipMagic = []byte{'B', 'Z', 'h'}
)

// decompressed returns r, decompressed when it starts as a gzip stream.
func decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the image: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: the image looks gzip-compressed but is not: %w", sdk.ErrInvalidArgument, err)
		}
		return zr, nil
	case bytes.HasPrefix(head, xzMagic), bytes.HasPrefix(head, zstdMagic), bytes.HasPrefix(head, bzipMagic):
		return nil, fmt.Errorf("%w: the image is xz, zstd or bzip2 compressed; write_stream decompresses gzip only: decompress it first, or flash it as an upload", sdk.ErrInvalidArgument)
	}
	return br, nil
}

// WriteStream writes the bytes the client sends, until its half-close, to
// the device (gzip images decompressed), and answers JSON lines: progress
// now and then, and finally the result or the error. A client that goes
// away before its half-close leaves the device marked not fully written.
func (s *Storage) WriteStream(ctx context.Context, conn sdk.Conn) error {
	var mu sync.Mutex // progress is reported from the copy while the result waits
	send := func(r Reply) {
		b, _ := json.Marshal(r)
		mu.Lock()
		defer mu.Unlock()
		_, _ = conn.Write(append(b, '\n'))
	}
	report := func(p Progress) { send(Reply{Progress: &p}) }
	var res Result
	var err error
	if f := sdk.LocalFile(conn); f != nil {
		res, err = s.writeLocal(ctx, f, report)
	} else {
		res, err = s.writeImage(ctx, conn, 0, report)
	}
	if err != nil {
		send(Reply{Error: err.Error()})
	} else {
		send(Reply{Result: &res})
	}
	_ = conn.CloseWrite()
	return nil
}

// writeImage writes r, decompressed if it is gzip, to the device. size is
// r's size when known (else 0); it is the image's size unless r is gzip.
func (s *Storage) writeImage(ctx context.Context, r io.Reader, size int64, report func(Progress)) (Result, error) {
	// A refused write must not wait for the image: check before reading it.
	if err := s.checkWritable(); err != nil {
		return Result{}, err
	}
	img, err := decompressed(r)
	if err != nil {
		return Result{}, fmt.Errorf("storage: %w", err)
	}
	if _, isGzip := img.(*gzip.Reader); isGzip {
		size = 0
	}
	return s.writeFrom(ctx, img, size, report)
}

// writeLocal writes the image of a client that handed its file over
// (sdk.LocalFile): a raw image is copied in the kernel (writeFrom with an
// *os.File), of its size; a compressed one is decompressed as a stream.
func (s *Storage) writeLocal(ctx context.Context, f *os.File, report func(Progress)) (Result, error) {
	head := make([]byte, 6)
	k, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Result{}, fmt.Errorf("%w: storage: reading the image: %w", sdk.ErrIO, err)
	}
	head = head[:k]
	for _, magic := range [][]byte{gzipMagic, xzMagic, zstdMagic, bzipMagic} {
		if bytes.HasPrefix(head, magic) {
			return s.writeImage(ctx, f, 0, report)
		}
	}
	if err := s.checkWritable(); err != nil {
		return Result{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("%w: storage: reading the image: %w", sdk.ErrIO, err)
	}
	s.Logger().Debug("writing a local image file in the kernel", "size", st.Size())
	return s.writeFrom(ctx, f, st.Size(), report)
}

// checkWritable refuses early a write that writeFrom would refuse.
func (s *Storage) checkWritable() error {
	st, err := s.state()
	if err != nil {
		return err
	}
	if st.Mux != Host && s.mux {
		return fmt.Errorf("%w: storage: %s is switched to %s; call host() before writing to it", sdk.ErrBusy, s.cfg.Path, muxName(st.Mux))
	}
	return nil
}

// ReadStream sends the device's content, then half-closes.
func (s *Storage) ReadStream(ctx context.Context, conn sdk.Conn) error {
	_, err := s.readTo(ctx, conn)
	if err != nil {
		return err
	}
	return conn.CloseWrite()
}
