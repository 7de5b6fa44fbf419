package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Progress is how far a write has come.
type Progress struct {
	Bytes int64   `json:"bytes"`           // written so far
	Total int64   `json:"total,omitempty"` // the image's size, 0 when unknown
	Rate  float64 `json:"rate"`            // bytes per second since the start
	ETA   float64 `json:"eta,omitempty"`   // seconds left, when the size is known
}

// Result is what a complete write reports.
type Result struct {
	Bytes   int64   `json:"bytes"`   // bytes written
	SHA256  string  `json:"sha256"`  // hex sha256 of the bytes written
	Seconds float64 `json:"seconds"` // how long the write took, fsync included
}

// bufSize is the size of each buffer a write moves; bufCount of them cycle
// between reading, writing and hashing, which run concurrently.
const (
	bufSize  = 1 << 20
	bufCount = 4
)

// progressEvery is how often a write reports its progress.
const progressEvery = 500 * time.Millisecond

// errShort is the error of an image that ended before its announced size.
var errShort = errors.New("the image ended early")

// writeFrom writes everything r yields to the device, from its start, and
// fsyncs it. total is the image's size when known (else 0): an image that
// ends before it is refused. report, if set, is called with the progress
// now and then, and once at the end. The device's state is marked
// incomplete before the first byte and complete only after the fsync.
func (s *Storage) writeFrom(ctx context.Context, r io.Reader, total int64, report func(Progress)) (res Result, err error) {
	release, st, err := s.acquireHost("write", "writing to")
	if err != nil {
		return Result{}, err
	}
	defer release()
	f, devSize, err := s.openForWrite(total)
	isDev := devSize >= 0
	if err != nil {
		return Result{}, err
	}
	st.Complete, st.Written, st.SHA256, st.Error = false, 0, "", "writing"
	if err := writeState(s.statePath, st); err != nil {
		f.Close()
		return Result{}, err
	}
	s.Logger().Info("write started", "device", s.cfg.Path, "size", total)
	start := time.Now()
	limit, over := total, fmt.Errorf("%w: the image is longer than its announced %d bytes", sdk.ErrInvalidArgument, total)
	if isDev && limit == 0 {
		// An image of unknown size (gzip) must still fit the device.
		limit, over = devSize, fmt.Errorf("%w: the image is larger than %s (%d bytes)", sdk.ErrInvalidArgument, s.cfg.Path, devSize)
	}
	progress := func(n int64) {
		if report != nil {
			report(progressOf(n, total, start))
		}
	}
	var n int64
	var sum []byte
	if src, ok := r.(*os.File); ok {
		n, sum, err = copyRangeHashed(ctx, f, src, limit, over, progress)
	} else {
		n, sum, err = copyHashed(ctx, &writingBack{f: f}, r, limit, over, progress)
	}
	if err == nil && total > 0 && n != total {
		err = fmt.Errorf("%w after %d of %d bytes", errShort, n, total)
	}
	if err == nil && !isDev {
		err = f.Truncate(n) // an image file is exactly the image; a block device keeps what lies beyond it
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil && isDev {
		// The device's own page cache goes too: what the host reads back next
		// (or after the DUT has written the medium) comes from the device.
		// It needs CAP_SYS_ADMIN; without it the write, fsynced, still stands.
		if ferr := flushBuffers(f); ferr != nil {
			s.Logger().Warn("could not drop the device's cache after the write", "error", ferr)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	st.Written = n
	if err != nil {
		st.Error = err.Error()
		if werr := writeState(s.statePath, st); werr != nil {
			s.Logger().Error("could not record the failed write", "error", werr)
		}
		s.Logger().Error("write failed; the device is marked not fully written", "written", n, "error", err)
		code := sdk.ErrIO
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errShort) {
			code = sdk.ErrUnavailable
		}
		if errors.Is(err, sdk.ErrInvalidArgument) {
			code = sdk.ErrInvalidArgument
		}
		return Result{}, fmt.Errorf("%w: storage: write to %s stopped after %d bytes, and the device is marked not fully written: %w", code, s.cfg.Path, n, err)
	}
	st.Complete, st.SHA256, st.Error = true, hex.EncodeToString(sum), ""
	if err := writeState(s.statePath, st); err != nil {
		return Result{}, err
	}
	res = Result{Bytes: n, SHA256: st.SHA256, Seconds: time.Since(start).Seconds()}
	if report != nil {
		report(progressOf(n, n, start))
	}
	s.Logger().Info("write complete", "bytes", n, "sha256", res.SHA256, "seconds", res.Seconds)
	return res, nil
}

// writingBack writes to f from its start and has what it wrote written out
// as it goes (see writeback).
type writingBack struct {
	f   *os.File
	off int64
}

func (w *writingBack) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if n > 0 {
		writeback(w.f, w.off, int64(n))
		w.off += int64(n)
	}
	return n, err
}

func progressOf(n, total int64, start time.Time) Progress {
	p := Progress{Bytes: n, Total: total}
	if secs := time.Since(start).Seconds(); secs > 0 {
		p.Rate = float64(n) / secs
	}
	if total > 0 && p.Rate > 0 && total >= n {
		p.ETA = float64(total-n) / p.Rate
	}
	return p
}

func muxName(m string) string {
	switch m {
	case DUT:
		return "the DUT"
	case Off:
		return "off"
	}
	return m
}

// openForWrite opens the device for writing: a block device as it is (an
// image larger than it is refused), an image file created if missing.
// devSize is a block device's size, -1 for an image file.
func (s *Storage) openForWrite(total int64) (f *os.File, devSize int64, err error) {
	st, err := os.Stat(s.cfg.Path)
	switch {
	case err == nil && st.Mode()&fs.ModeDevice != 0:
		f, err = os.OpenFile(s.cfg.Path, os.O_WRONLY, 0)
		if err != nil {
			return nil, -1, fmt.Errorf("%w: storage: open %s: %w", sdk.ErrUnavailable, s.cfg.Path, err)
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, -1, fmt.Errorf("%w: storage: size of %s: %w", sdk.ErrIO, s.cfg.Path, err)
		}
		if total > size {
			f.Close()
			return nil, -1, fmt.Errorf("%w: storage: the image is %d bytes, larger than %s (%d bytes)", sdk.ErrInvalidArgument, total, s.cfg.Path, size)
		}
		if size == 0 {
			f.Close()
			return nil, -1, fmt.Errorf("%w: storage: %s has no medium (its size is 0)", sdk.ErrUnavailable, s.cfg.Path)
		}
		return f, size, nil
	case err == nil && !st.Mode().IsRegular():
		return nil, -1, fmt.Errorf("%w: storage: %s is neither a block device nor a regular file", sdk.ErrUnavailable, s.cfg.Path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, -1, fmt.Errorf("%w: storage: %w", sdk.ErrUnavailable, err)
	}
	f, err = os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, -1, fmt.Errorf("%w: storage: open %s: %w", sdk.ErrUnavailable, s.cfg.Path, err)
	}
	return f, -1, nil
}

// copyHashed copies r to w while hashing what it copies. Reading, writing
// and hashing run concurrently on different buffers. An r longer than limit
// (when limit > 0) fails with over, and nothing beyond limit is written.
// progress is called at most every progressEvery with the bytes written so
// far.
func copyHashed(ctx context.Context, w io.Writer, r io.Reader, limit int64, over error, progress func(int64)) (int64, []byte, error) {
	free := make(chan []byte, bufCount)
	for range bufCount {
		free <- make([]byte, bufSize)
	}
	type filled struct {
		b   []byte
		err error
	}
	toWrite := make(chan filled, bufCount)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the reader
		defer close(toWrite)
		for {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n, err := io.ReadFull(r, b)
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = io.EOF
			}
			select {
			case toWrite <- filled{b[:n], err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	toHash := make(chan []byte, bufCount)
	hashed := make(chan []byte, 1)
	go func(in <-chan []byte) { // the hasher
		h := sha256.New()
		for b := range in {
			h.Write(b)
			free <- b[:cap(b)]
		}
		hashed <- h.Sum(nil)
	}(toHash)
	defer func() {
		if toHash != nil {
			close(toHash)
			<-hashed
		}
	}()
	var n int64
	last := time.Now()
	for {
		var c filled
		var ok bool
		select {
		case c, ok = <-toWrite:
		case <-ctx.Done():
			return n, nil, ctx.Err()
		}
		if !ok {
			return n, nil, errors.New("storage: reader stopped")
		}
		if limit > 0 && n+int64(len(c.b)) > limit {
			return n, nil, over
		}
		if len(c.b) > 0 {
			m, err := w.Write(c.b)
			n += int64(m)
			if err != nil {
				return n, nil, fmt.Errorf("%w: %w", sdk.ErrIO, err)
			}
			toHash <- c.b
		}
		if errors.Is(c.err, io.EOF) {
			close(toHash)
			toHash = nil
			return n, <-hashed, nil
		}
		if c.err != nil {
			return n, nil, fmt.Errorf("reading the image: %w", c.err)
		}
		if time.Since(last) >= progressEvery {
			last = time.Now()
			progress(n)
		}
	}
}

// rangeChunk is how much copyRangeHashed copies in the kernel at a time:
// between two chunks it reports progress and notices a cancellation.
const rangeChunk = 16 << 20

// copyRangeHashed copies src, from its offset, to dst, from its start, in
// the kernel (copy_file_range where the file systems allow it, else what
// os.File.ReadFrom falls back to), in chunks of rangeChunk, while another
// goroutine reads back each copied range of src (pread) to hash it. It
// honours limit, over and progress as copyHashed does: a src longer than
// limit fails with over, and nothing beyond limit is written.
func copyRangeHashed(ctx context.Context, dst, src *os.File, limit int64, over error, progress func(int64)) (int64, []byte, error) {
	start, err := src.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the image: %w", err)
	}
	type span struct{ off, n int64 }
	type sum struct {
		b   []byte
		err error
	}
	spans := make(chan span, 64)
	hashed := make(chan sum, 1)
	go func(spans <-chan span) { // the hasher
		h := sha256.New()
		buf := make([]byte, bufSize)
		var err error
		for sp := range spans {
			for off, end := sp.off, sp.off+sp.n; off < end && err == nil; {
				k, rerr := src.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
				h.Write(buf[:k])
				off += int64(k)
				if rerr != nil && off < end {
					err = fmt.Errorf("reading the image back to hash it: %w", rerr)
				}
			}
		}
		hashed <- sum{h.Sum(nil), err}
	}(spans)
	finish := func() sum {
		if spans != nil {
			close(spans)
			spans = nil
		}
		return <-hashed
	}
	var n int64
	last := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			finish()
			return n, nil, err
		}
		chunk := int64(rangeChunk)
		if limit > 0 {
			chunk = min(chunk, limit-n)
		}
		var m int64
		if chunk > 0 {
			m, err = dst.ReadFrom(io.LimitReader(src, chunk))
			if m > 0 {
				writeback(dst, n, m)
				spans <- span{start + n, m}
				n += m
			}
			if err != nil {
				finish()
				return n, nil, fmt.Errorf("%w: %w", sdk.ErrIO, err)
			}
		}
		if m == 0 { // src's end, or limit reached
			if limit > 0 && n == limit {
				var one [1]byte
				if k, _ := src.ReadAt(one[:], start+n); k > 0 {
					finish()
					return n, nil, over
				}
			}
			r := finish()
			if r.err != nil {
				return n, nil, r.err
			}
			return n, r.b, nil
		}
		if time.Since(last) >= progressEvery {
			last = time.Now()
			progress(n)
		}
	}
}

// readTo writes the device's content to w, from its start, and returns the
// bytes written and their sha256. A client that goes away mid-read is an
// UNAVAILABLE error; the device is left as it was.
func (s *Storage) readTo(ctx context.Context, w io.Writer) (Result, error) {
	release, _, err := s.acquireHost("read", "reading")
	if err != nil {
		return Result{}, err
	}
	defer release()
	f, err := s.openForRead()
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	s.Logger().Info("read started", "device", s.cfg.Path)
	start := time.Now()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), readerCtx{ctx, f}, make([]byte, bufSize))
	if err != nil {
		kind := sdk.ErrIO
		if errors.Is(err, sdk.ErrDownloadIncomplete) || errors.Is(err, sdk.ErrClosed) || ctx.Err() != nil {
			kind = sdk.ErrUnavailable
		}
		s.Logger().Error("read failed", "read", n, "error", err)
		return Result{}, fmt.Errorf("%w: storage: read %s stopped after %d bytes: %w", kind, s.cfg.Path, n, err)
	}
	res := Result{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil)), Seconds: time.Since(start).Seconds()}
	s.Logger().Info("read complete", "bytes", n, "sha256", res.SHA256, "seconds", res.Seconds)
	return res, nil
}

// openForRead opens the device for reading. The temporary image of an
// instance configured without path reads as empty until written, as
// upstream's mock types' do.
func (s *Storage) openForRead() (*os.File, error) {
	f, err := os.Open(s.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) && s.tempDir != "" {
		f, err = os.Open(os.DevNull)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: storage: %s does not exist yet: write an image to it first", sdk.ErrUnavailable, s.cfg.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: storage: %w", sdk.ErrUnavailable, err)
	}
	return f, nil
}

// acquireHost takes the device for op (as acquire does) and returns its
// state, refusing when a storage mux has it switched away from the host;
// doing says what op does to it, for the refusal ("writing to").
func (s *Storage) acquireHost(op, doing string) (release func(), st State, err error) {
	release, err = s.acquire(op)
	if err != nil {
		return nil, st, err
	}
	if st, err = s.state(); err != nil {
		release()
		return nil, st, err
	}
	if st.Mux != Host && s.mux {
		release()
		return nil, st, fmt.Errorf("%w: storage: %s is switched to %s; call host() before %s it", sdk.ErrBusy, s.cfg.Path, muxName(st.Mux), doing)
	}
	return release, st, nil
}

// readerCtx stops reading once ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
