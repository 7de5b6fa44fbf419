package exporter

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
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

// passphraseAuth checks the passphrase of every call before it reaches a
// service: a gRPC unary and stream interceptor pair.
type passphraseAuth struct {
	want   [sha256.Size]byte
	logger hclog.Logger
	// equal compares two hashes; subtle.ConstantTimeCompare (a field so that
	// a test can see what it is given).
	equal func(x, y []byte) int
}

func newPassphraseAuth(passphrase string, logger hclog.Logger) *passphraseAuth {
	return &passphraseAuth{
		want:   sha256.Sum256([]byte(passphrase)),
		logger: logger,
		equal:  subtle.ConstantTimeCompare,
	}
}

// check admits a call whose metadata carries the passphrase exactly once.
// It compares SHA-256 hashes in constant time: neither the passphrase's
// content nor its length shows in how long a refusal takes.
func (a *passphraseAuth) check(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
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
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	a.logger.Warn("refused a call: wrong or missing passphrase", "peer", from, "method", method, "passphrase", problem)
	return errPassphrase
}

func (a *passphraseAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *passphraseAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
