package exporter

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// FuzzStreamRequest: whatever a client puts in the request header of a
// stream, parsing it never panics, and either yields a driver request with
// a uuid and a method, or a resource request with a uuid, no method and a
// known content encoding, or refuses it with INVALID_ARGUMENT or UNIMPLEMENTED
// and a message saying what was wrong.
func FuzzStreamRequest(f *testing.F) {
	for _, seed := range []string{
		`{"kind":"driver","uuid":"6b1f3c2a-8e4d-5f7a-9c0b-2d4e6f8a1b3c","method":"connect"}`,
		`{"kind":"resource","uuid":"x","x_jmp_content_encoding":null}`,
		`{"kind":"resource","uuid":"x","x_jmp_content_encoding":"zip"}`,
		`{"kind":"resource","uuid":"x","method":"m"}`,
		`{"kind":"driver","uuid":"x","method":"connect","extra":1}`,
		`{"kind":"driver"`,
		`{"kind":"driver","uuid":"","method":""} {}`,
		`null`, `[]`, `"driver"`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r, err := parseStreamRequest(metadata.Pairs(RequestHeader, header))
		if err == nil {
			driver := r.Kind == "driver" && r.UUID != "" && r.Method != ""
			resource := r.Kind == "resource" && r.UUID != "" && r.Method == "" &&
				(r.XJmpContentEncoding == nil || knownEncoding(*r.XJmpContentEncoding))
			if !driver && !resource {
				t.Fatalf("accepted %q as %+v", header, r)
			}
			return
		}
		s := status.Convert(err)
		if c := s.Code(); c != codes.InvalidArgument && c != codes.Unimplemented {
			t.Fatalf("%q: code %v", header, c)
		}
		if !strings.Contains(s.Message(), "stream") {
			t.Fatalf("%q: message %q does not say it is about the stream request", header, s.Message())
		}
	})
}
