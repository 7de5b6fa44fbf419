package exporter

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// PassphraseHeader is the request metadata key carrying the passphrase of
// an exporter served over TCP (WIRE.md, "Local access").
const PassphraseHeader = "x-jumpstarter-passphrase"

// errPassphrase is what a client with a wrong or missing passphrase gets,
// whichever it was: the caller learns nothing else.
var errPassphrase = status.Error(codes.Unauthenticated, "wrong or missing passphrase")

// passphraseAuth checks the passphrase of every call on the call's
// headers, before any of its message is read (see gate): a caller without
// the passphrase costs the exporter no more than its headers.
type passphraseAuth struct {
	want    [sha256.Size]byte
	refused *rateLog
	// equal compares two hashes; subtle.ConstantTimeCompare (a field so that
	// a test can see what it is given).
	equal func(x, y []byte) int
}

func newPassphraseAuth(passphrase string, logger hclog.Logger) *passphraseAuth {
	return &passphraseAuth{
		want:    sha256.Sum256([]byte(passphrase)),
		refused: newRateLog(logger, "refused a call: wrong or missing passphrase", rateLogEvery),
		equal:   subtle.ConstantTimeCompare,
	}
}

// check admits a call from p whose metadata md carries the passphrase
// exactly once. It compares SHA-256 hashes in constant time: neither the
// passphrase's content nor its length shows in how long a refusal takes.
// Refusals are logged with the caller's address, at most one line per
// rateLogEvery with a count (a caller can repeat them at will).
func (a *passphraseAuth) check(md metadata.MD, p *peer.Peer, method string) error {
	got := md.Get(PassphraseHeader)
	var given string
	if len(got) == 1 {
		given = got[0]
	}
	sum := sha256.Sum256([]byte(given))
	if a.equal(sum[:], a.want[:]) == 1 && len(got) == 1 {
		return nil
	}
	problem := "wrong"
	switch {
	case len(got) == 0:
		problem = "missing"
	case len(got) > 1:
		problem = "repeated"
	}
	from := "unknown"
	if p != nil && p.Addr != nil {
		from = p.Addr.String()
	}
	a.refused.add("peer", from, "method", truncate(method, 200), "passphrase", problem)
	return errPassphrase
}
