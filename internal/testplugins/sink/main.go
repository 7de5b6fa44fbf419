// Command sink is a test driver for uploads, built as the plugin
// jumpwire-driver-sink (exporter tests, the compatibility suite in compat/):
// flash reads an upload and answers with its size and sha256, so a test
// checks what the driver read. It answers to the type name of its Python
// twin for upstream's exporter, compat_sink.Sink (compat/compat_sink.py), so
// one exporter config serves both.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"iter"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Sink reads uploads.
type Sink struct{ sdk.Base }

// Digest is what flash read.
type Digest struct {
	Size   int64   `json:"size"`
	SHA256 string  `json:"sha256"`
	Target *string `json:"target"`
}

// Exports lists flash.
func (s *Sink) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("flash", s.Flash, "Read an image and report its size and sha256"),
		sdk.Export("flash_progress", s.FlashProgress, "Read an image, streaming how many bytes were read after each MiB and at the end"),
		sdk.Export("dump", s.Dump, "Write size bytes of the test pattern (byte i is i mod 251) to a download"),
		sdk.Export("dump_fail", s.DumpFail, "Write half of size bytes of the test pattern, then fail"),
	}
}

// pattern writes n bytes of the test pattern to w: byte i is i mod 251, a
// cycle that frames of any power-of-two size cut in different places.
func pattern(w io.Writer, n int64) (int64, error) {
	cycle := make([]byte, 251*256)
	for i := range cycle {
		cycle[i] = byte(i % 251)
	}
	var done int64
	for done < n {
		k, err := w.Write(cycle[:min(int64(len(cycle)), n-done)])
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Dump writes size bytes of the test pattern to target.
func (s *Sink) Dump(ctx context.Context, target sdk.Download, size int64) (int64, error) {
	return pattern(target, size)
}

// DumpFail writes half of size bytes of the test pattern, then fails, as a
// device that goes away does.
func (s *Sink) DumpFail(ctx context.Context, target sdk.Download, size int64) error {
	if _, err := pattern(target, size/2); err != nil {
		return err
	}
	return sdk.Errorf(sdk.ErrUnavailable, "the device went away after %d bytes", size/2)
}

// FlashProgress reads image to its end, yielding the bytes read so far
// after each MiB and once more at the end.
func (s *Sink) FlashProgress(ctx context.Context, image sdk.Resource) iter.Seq2[int64, error] {
	return func(yield func(int64, error) bool) {
		var n int64
		for {
			k, err := io.CopyN(io.Discard, image, 1<<20)
			n += k
			if errors.Is(err, io.EOF) {
				yield(n, nil)
				return
			}
			if err != nil {
				yield(0, err)
				return
			}
			if !yield(n, nil) {
				return
			}
		}
	}
}

// Flash reads image to its end.
func (s *Sink) Flash(ctx context.Context, image sdk.Resource, target *string) (Digest, error) {
	h := sha256.New()
	n, err := io.Copy(h, image)
	if err != nil {
		return Digest{}, err
	}
	return Digest{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Target: target}, nil
}

func main() {
	sdk.Serve(sdk.Plugin{Drivers: []sdk.Type{{
		Name:        "sink",
		Aliases:     []string{"compat_sink.Sink"},
		Client:      "jumpstarter_driver_opendal.client.FlasherClient",
		Description: "Reads uploads and reports their size and sha256",
		New:         sdk.Factory(func(struct{}) (*Sink, error) { return &Sink{}, nil }),
	}}})
}
