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
	"io"

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
