package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// passphraseHeader is the request metadata key carrying the passphrase (WIRE.md, "Local access").
const passphraseHeader = "x-jumpstarter-passphrase"

// Sentinel errors of exporters reached over TCP, checked with errors.Is.
var (
	// ErrPassphrase means the exporter refused the passphrase: it was wrong, or none was given.
	ErrPassphrase = errors.New("the exporter refused the passphrase")
	// ErrNotTLS means Dial expected TLS but the exporter answered in plaintext.
	ErrNotTLS = errors.New("the exporter does not use TLS")
	// ErrTLSOnly means Dial talked plaintext ([WithInsecure]) to an exporter that serves TLS.
	ErrTLSOnly = errors.New("the exporter uses TLS")
	// ErrCertificate means the exporter's certificate was not accepted: not the pinned one, signed by
	// an unknown authority, issued for another name, or expired.
	ErrCertificate = errors.New("the exporter's certificate is not trusted")
)

// WithTLSCA trusts the certificate authorities in the PEM file caFile (instead of the system's) to
// vouch for a TCP exporter's certificate, which must also name the host dialed.
func WithTLSCA(caFile string) Option {
	return func(o *options) { o.tlsCA = caFile }
}

// WithTLSFingerprint accepts exactly the TCP exporter certificate whose SHA-256 fingerprint is
// fingerprint, as `jw run` prints it ("sha256:AB:CD:..."; case and colons do not matter), whoever
// signed it and whatever names it holds: this is how a self-signed certificate is trusted.
func WithTLSFingerprint(fingerprint string) Option {
	return func(o *options) { o.fingerprint = fingerprint }
}

// WithInsecure talks plaintext to a TCP exporter: no TLS, so anyone on the network path can read
// and change the traffic, passphrase included. Unix sockets are always plaintext.
func WithInsecure() Option {
	return func(o *options) { o.insecure = true }
}

// WithPassphrase sends passphrase with every call to a TCP exporter (metadata
// x-jumpstarter-passphrase). It is only sent over TLS unless [WithInsecure] is given; over a unix
// socket it is not sent (the socket's file mode guards it).
func WithPassphrase(passphrase string) Option {
	return func(o *options) { o.passphrase = &passphrase }
}

// FingerprintError is an exporter certificate that is not the pinned one. errors.Is(err,
// ErrCertificate) holds.
type FingerprintError struct {
	// Got is the fingerprint of the certificate the exporter presented, Want the pinned one, both
	// as "sha256:AB:CD:...".
	Got, Want string
}

// Error says which certificate the exporter presented and which was pinned.
func (e *FingerprintError) Error() string {
	return "the exporter's certificate has fingerprint " + e.Got + ", not the pinned " + e.Want
}

// Is makes errors.Is(err, ErrCertificate) hold.
func (e *FingerprintError) Is(target error) bool { return target == ErrCertificate }

// tcpError is one of the sentinels above with the detail that goes with it.
type tcpError struct {
	kind error
	msg  string
	err  error
}

func (e *tcpError) Error() string        { return e.msg }
func (e *tcpError) Is(target error) bool { return target == e.kind }
func (e *tcpError) Unwrap() error        { return e.err }

// tcpTarget recognises a TCP target: "tcp://HOST:PORT", or a bare "HOST:PORT" (no slash, a
// numeric port). ok is false for anything else, which names a unix socket.
func tcpTarget(target string) (hostport string, ok bool, err error) {
	rest, explicit := strings.CutPrefix(target, "tcp://")
	if !explicit && (strings.Contains(target, "/") || strings.HasPrefix(target, "unix:")) {
		return "", false, nil
	}
	host, port, err := net.SplitHostPort(rest)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err == nil && host != "" && perr == nil && n > 0 {
		return rest, true, nil
	}
	if explicit {
		return "", true, fmt.Errorf("exporter address %q: want tcp://HOST:PORT (a port from 1 to 65535)", target)
	}
	return "", false, nil
}

// Fingerprint is the SHA-256 fingerprint of a DER certificate, as `jw run` prints it and
// [WithTLSFingerprint] takes it: "sha256:AB:CD:...".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return formatFingerprint(sum[:])
}

func formatFingerprint(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var b strings.Builder
	b.WriteString("sha256:")
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// parseFingerprint reads "sha256:AB:CD:..." (or the hex alone; any case, colons optional).
func parseFingerprint(s string) ([]byte, error) {
	h := strings.TrimSpace(s)
	if len(h) >= 7 && strings.EqualFold(h[:7], "sha256:") {
		h = h[7:]
	}
	sum, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("invalid TLS fingerprint %q: want sha256: and 32 bytes in hex (sha256:AB:CD:... as jw run prints it)", s)
	}
	return sum, nil
}

// tlsConfig is the client's TLS configuration for host, from the options.
func (o *options) tlsConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName: host,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
	}
	switch {
	case o.fingerprint != "":
		pin, err := parseFingerprint(o.fingerprint)
		if err != nil {
			return nil, err
		}
		// Pinning. InsecureSkipVerify turns off only the chain and host-name checks, which say
		// nothing about a self-signed certificate; crypto/tls still checks that the server holds
		// the private key of the certificate it presents (its handshake signature) and then calls
		// VerifyPeerCertificate, which accepts that exact certificate and nothing else. So the
		// connection is as authenticated as the fingerprint is. No session cache is set, so every
		// connection runs a full handshake and this check (resumed sessions would skip it).
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 {
				return &tcpError{kind: ErrCertificate, msg: "the exporter presented no certificate"}
			}
			sum := sha256.Sum256(rawCerts[0])
			if !bytes.Equal(sum[:], pin) {
				return &FingerprintError{Got: formatFingerprint(sum[:]), Want: formatFingerprint(pin)}
			}
			return nil
		}
	case o.tlsCA != "":
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificates in it", o.tlsCA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// dialTCP connects to an exporter over TCP: it checks that the port answers, that TLS (or
// plaintext) is what the exporter speaks and its certificate is the expected one, and, with one
// GetStatus call, that the exporter accepts the passphrase.
func dialTCP(ctx context.Context, target, hostport string, o *options) (*Client, error) {
	switch {
	case o.insecure && (o.tlsCA != "" || o.fingerprint != ""):
		return nil, fmt.Errorf("exporter address %q: plaintext (insecure) and a TLS CA or fingerprint exclude each other", target)
	case o.tlsCA != "" && o.fingerprint != "":
		return nil, fmt.Errorf("exporter address %q: a TLS CA and a pinned fingerprint exclude each other", target)
	}
	host, _, _ := net.SplitHostPort(hostport)
	var cfg *tls.Config
	if !o.insecure {
		var err error
		if cfg, err = o.tlsConfig(host); err != nil {
			return nil, err
		}
	}

	d := net.Dialer{Timeout: 15 * time.Second}
	probe, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, &unreachableError{addr: hostport, reason: tcpReason(err), err: err}
	}
	if cfg != nil {
		tc := tls.Client(probe, cfg)
		err = tc.HandshakeContext(ctx)
		_ = tc.Close()
		if err != nil {
			return nil, handshakeError(hostport, err)
		}
	} else {
		_ = probe.Close()
	}

	dialOpts := append(protocol.DialOptions(protocol.TCP), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if cfg != nil {
		dialOpts = append(protocol.DialOptions(protocol.TLS), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	if o.passphrase != nil {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(passphraseCreds{*o.passphrase, !o.insecure}))
	}
	conn, err := grpc.NewClient("passthrough:///"+hostport, append(dialOpts, o.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("exporter address %q: %w", target, err)
	}
	c := &Client{addr: hostport, tcp: true, conn: conn, svc: jumpstarterv1.NewExporterServiceClient(conn)}
	if err := c.checkAccess(ctx, cfg == nil); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// checkAccess makes one GetStatus call: it finds a refused passphrase, and plaintext sent to a
// TLS exporter.
func (c *Client) checkAccess(ctx context.Context, plaintext bool) error {
	_, err := c.svc.GetStatus(ctx, &jumpstarterv1.GetStatusRequest{})
	switch status.Code(err) {
	case codes.OK, codes.Unimplemented: // an exporter without GetStatus still answered
		return nil
	case codes.Unauthenticated:
		return &tcpError{kind: ErrPassphrase, err: err,
			msg: ErrPassphrase.Error() + " (" + oneLine(status.Convert(err).Message()) + ")"}
	case codes.Unavailable:
		if plaintext && speaksTLS(ctx, c.addr) {
			return &tcpError{kind: ErrTLSOnly, err: err,
				msg: "the exporter at " + c.addr + " uses TLS, not plaintext"}
		}
	}
	return c.wrap(ctx, "get status", err)
}

// speaksTLS reports whether a TLS handshake with addr succeeds, whatever its certificate.
func speaksTLS(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}} // only asks whether TLS answers
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// handshakeError says in one line why the TLS handshake with the exporter at addr failed.
func handshakeError(addr string, err error) error {
	var (
		fp       *FingerprintError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	certErr := func(msg string) error { return &tcpError{kind: ErrCertificate, msg: msg, err: err} }
	switch {
	case errors.As(err, &fp):
		return fp
	case errors.As(err, &record):
		return &tcpError{kind: ErrNotTLS, err: err,
			msg: "the exporter at " + addr + " does not use TLS (it answered the TLS handshake in plaintext)"}
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("TLS handshake with the exporter at %s: it closed the connection (does it serve TLS?): %w", addr, err)
	case errors.As(err, &unknown):
		return certErr("the exporter's certificate at " + addr + " is signed by an unknown authority")
	case errors.As(err, &hostname):
		return certErr("the exporter's certificate at " + addr + " is for " + certNames(hostname.Certificate) +
			", not " + hostname.Host)
	case errors.As(err, &invalid):
		return certErr("the exporter's certificate at " + addr + " is not valid: " +
			strings.TrimPrefix(invalid.Error(), "x509: "))
	case errors.As(err, &verify):
		return certErr("the exporter's certificate at " + addr + " is not trusted: " + verify.Err.Error())
	}
	return fmt.Errorf("TLS handshake with the exporter at %s: %w", addr, err)
}

// certNames lists the names a certificate is for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "no name"
	}
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no name"
	}
	return strings.Join(names, ", ")
}

// tcpReason says in a few words why connecting to a TCP address failed.
func tcpReason(err error) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens on that port)"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return dns.Err
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return err.Error()
}

// passphraseCreds adds the passphrase to every call's metadata.
type passphraseCreds struct {
	passphrase string
	secure     bool
}

func (p passphraseCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{passphraseHeader: p.passphrase}, nil
}

// RequireTransportSecurity keeps the passphrase off plaintext connections unless plaintext was
// asked for.
func (p passphraseCreds) RequireTransportSecurity() bool { return p.secure }
