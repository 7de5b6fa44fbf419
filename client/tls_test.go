package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// newCert makes an ECDSA certificate for names (DNS names or IP addresses), signed by parent, or
// self-signed when parent is nil; a CA when ca is set.
func newCert(t *testing.T, parent *tls.Certificate, ca bool, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  ca,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writePEM writes cert as a PEM file and returns its path.
func writePEM(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveTCP serves the fake lab exporter on 127.0.0.1, with TLS when cert is set, checking the
// passphrase metadata as a jumpwire exporter does when passphrase is set. It returns host:port.
func serveTCP(t *testing.T, cert *tls.Certificate, passphrase string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	}
	if passphrase != "" {
		opts = append(opts, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			if got := md.Get("x-jumpstarter-passphrase"); len(got) != 1 || got[0] != passphrase {
				return nil, status.Error(codes.Unauthenticated, "wrong or missing passphrase")
			}
			return h(ctx, req)
		}))
	}
	srv := grpc.NewServer(opts...)
	jumpstarterv1.RegisterExporterServiceServer(srv, fakeexporter.Lab())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// TestDialTCP: each way of trusting a TCP exporter reaches it, with the passphrase.
func TestDialTCP(t *testing.T) {
	// Self-signed for a name the client does not dial: pinning ignores names and issuers.
	self := newCert(t, nil, false, "elsewhere.example")
	ca := newCert(t, nil, true)
	signed := newCert(t, &ca, false, "127.0.0.1")
	pinned := serveTCP(t, &self, "s3cret")
	fp := client.Fingerprint(self.Certificate[0])

	tests := []struct {
		name, target string
		opts         []client.Option
	}{
		{"pinned fingerprint", "tcp://" + pinned,
			[]client.Option{client.WithTLSFingerprint(fp), client.WithPassphrase("s3cret")}},
		{"fingerprint in lower case without colons", "tcp://" + pinned,
			[]client.Option{client.WithTLSFingerprint("sha256:" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(fp, "sha256:"), ":", ""))),
				client.WithPassphrase("s3cret")}},
		{"bare host:port", pinned,
			[]client.Option{client.WithTLSFingerprint(fp), client.WithPassphrase("s3cret")}},
		{"CA file", "tcp://" + serveTCP(t, &signed, "s3cret"),
			[]client.Option{client.WithTLSCA(writePEM(t, ca)), client.WithPassphrase("s3cret")}},
		{"plaintext", "tcp://" + serveTCP(t, nil, "s3cret"),
			[]client.Option{client.WithInsecure(), client.WithPassphrase("s3cret")}},
		{"no passphrase needed", "tcp://" + serveTCP(t, &self, ""),
			[]client.Option{client.WithTLSFingerprint(fp)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial(t.Context(), tt.target, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tree, err := c.Tree(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tree.Name != "lab-1" {
				t.Errorf("tree name %q, want lab-1", tree.Name)
			}
		})
	}
}

// TestDialTCPErrors: each way a TCP exporter can be the wrong one, or be reached the wrong way,
// fails in Dial with one line saying which.
func TestDialTCPErrors(t *testing.T) {
	self := newCert(t, nil, false, "127.0.0.1")
	other := newCert(t, nil, false, "127.0.0.1")
	ca := newCert(t, nil, true)
	misnamed := newCert(t, &ca, false, "lab-1.example")
	tlsAddr := serveTCP(t, &self, "s3cret")
	plainAddr := serveTCP(t, nil, "")
	misnamedAddr := serveTCP(t, &misnamed, "")
	fp := client.Fingerprint(self.Certificate[0])
	otherFP := client.Fingerprint(other.Certificate[0])
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name, target string
		opts         []client.Option
		is           error
		want         string
	}{
		{"wrong passphrase", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSFingerprint(fp), client.WithPassphrase("guess")},
			client.ErrPassphrase, "the exporter refused the passphrase (wrong or missing passphrase)"},
		{"missing passphrase", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSFingerprint(fp)},
			client.ErrPassphrase, "the exporter refused the passphrase (wrong or missing passphrase)"},
		{"wrong fingerprint", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSFingerprint(otherFP), client.WithPassphrase("s3cret")},
			client.ErrCertificate, "the exporter's certificate has fingerprint " + fp + ", not the pinned " + otherFP},
		{"unknown authority", "tcp://" + tlsAddr,
			[]client.Option{client.WithPassphrase("s3cret")},
			client.ErrCertificate, "the exporter's certificate at " + tlsAddr + " is signed by an unknown authority"},
		{"another CA", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSCA(writePEM(t, ca)), client.WithPassphrase("s3cret")},
			client.ErrCertificate, "the exporter's certificate at " + tlsAddr + " is signed by an unknown authority"},
		{"another name", "tcp://" + misnamedAddr,
			[]client.Option{client.WithTLSCA(writePEM(t, ca))},
			client.ErrCertificate, "the exporter's certificate at " + misnamedAddr + " is for lab-1.example, not 127.0.0.1"},
		{"TLS to a plaintext exporter", "tcp://" + plainAddr,
			[]client.Option{client.WithTLSFingerprint(fp)},
			client.ErrNotTLS, "the exporter at " + plainAddr + " does not use TLS (it answered the TLS handshake in plaintext)"},
		{"plaintext to a TLS exporter", "tcp://" + tlsAddr,
			[]client.Option{client.WithInsecure(), client.WithPassphrase("s3cret")},
			client.ErrTLSOnly, "the exporter at " + tlsAddr + " uses TLS, not plaintext"},
		{"nothing listening", "tcp://" + closedAddr,
			[]client.Option{client.WithInsecure()},
			client.ErrUnreachable, "cannot reach exporter at " + closedAddr + ": connection refused (nothing listens on that port)"},
		{"bad fingerprint", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSFingerprint("sha256:AB:CD")},
			nil, `invalid TLS fingerprint "sha256:AB:CD": want sha256: and 32 bytes in hex (sha256:AB:CD:... as jw run prints it)`},
		{"missing CA file", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSCA("/nonexistent/ca.pem")},
			os.ErrNotExist, "TLS CA file: open /nonexistent/ca.pem: no such file or directory"},
		{"CA file without certificates", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSCA(noPEM)},
			nil, "TLS CA file " + noPEM + ": no PEM certificates in it"},
		{"insecure and pinned", "tcp://" + tlsAddr,
			[]client.Option{client.WithInsecure(), client.WithTLSFingerprint(fp)},
			nil, `exporter address "tcp://` + tlsAddr + `": plaintext (insecure) and a TLS CA or fingerprint exclude each other`},
		{"CA and pinned", "tcp://" + tlsAddr,
			[]client.Option{client.WithTLSCA(noPEM), client.WithTLSFingerprint(fp)},
			nil, `exporter address "tcp://` + tlsAddr + `": a TLS CA and a pinned fingerprint exclude each other`},
		{"no port", "tcp://127.0.0.1", nil,
			nil, `exporter address "tcp://127.0.0.1": want tcp://HOST:PORT (a port from 1 to 65535)`},
		{"TLS options on a unix socket", "unix:///run/e.sock",
			[]client.Option{client.WithTLSFingerprint(fp)},
			nil, `exporter address "unix:///run/e.sock": a TLS CA or fingerprint applies to tcp:// addresses only`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial(t.Context(), tt.target, tt.opts...)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) is false", tt.is)
			}
		})
	}
}

// TestFingerprintErrorFields: the error names both fingerprints for programs too.
func TestFingerprintErrorFields(t *testing.T) {
	self := newCert(t, nil, false, "127.0.0.1")
	addr := serveTCP(t, &self, "")
	want := "sha256:" + strings.Repeat("00:", 31) + "00"
	_, err := client.Dial(t.Context(), "tcp://"+addr, client.WithTLSFingerprint(want))
	var fe *client.FingerprintError
	if !errors.As(err, &fe) {
		t.Fatalf("%v: not a *FingerprintError", err)
	}
	if fe.Got != client.Fingerprint(self.Certificate[0]) || fe.Want != want {
		t.Errorf("Got %s Want %s, want %s and %s", fe.Got, fe.Want, client.Fingerprint(self.Certificate[0]), want)
	}
}
