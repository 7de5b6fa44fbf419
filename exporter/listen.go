package exporter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Address is where an exporter serves: a unix socket or a TCP host and port.
type Address struct {
	// Network is "unix" or "tcp".
	Network string
	// Path is the socket's path (unix).
	Path string
	// Host is the TCP host name or IP address; "" listens on every interface.
	Host string
	// Port is the TCP port; 0 picks a free one.
	Port int
}

// AddressError is a listen address that does not parse; Reason says why.
type AddressError struct {
	Addr   string
	Reason string
}

// Error names the address and the problem.
func (e *AddressError) Error() string {
	return fmt.Sprintf("exporter: listen address %q: %s", e.Addr, e.Reason)
}

// ParseAddress parses a listen address: "unix:///path", "unix:path" or a
// bare path for a unix socket; "tcp://HOST:PORT" for TCP (HOST may be empty
// for every interface, an IPv6 address goes in brackets, PORT 0 picks a
// free port).
func ParseAddress(s string) (Address, error) {
	bad := func(format string, args ...any) (Address, error) {
		return Address{}, &AddressError{Addr: s, Reason: fmt.Sprintf(format, args...)}
	}
	if rest, ok := strings.CutPrefix(s, "tcp://"); ok {
		host, port, err := net.SplitHostPort(rest)
		var ae *net.AddrError
		switch {
		case rest == "" || port == "" && err == nil || errors.As(err, &ae) && strings.HasPrefix(ae.Err, "missing port"):
			return bad("no port (want tcp://HOST:PORT; port 0 picks a free one)")
		case ae != nil:
			return bad("want tcp://HOST:PORT (%s)", ae.Err)
		case err != nil:
			return bad("want tcp://HOST:PORT (%v)", err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return bad("port %q is not a number from 0 to 65535", port)
		}
		return Address{Network: "tcp", Host: host, Port: int(n)}, nil
	}
	path, ok := strings.CutPrefix(s, "unix://")
	if !ok {
		path, _ = strings.CutPrefix(s, "unix:")
	}
	if scheme, _, ok := strings.Cut(path, "://"); ok {
		return bad("unknown scheme %q (want unix:///PATH or tcp://HOST:PORT)", scheme)
	}
	if path == "" {
		return bad("no socket path")
	}
	return Address{Network: "unix", Path: path}, nil
}

// String is the address as ParseAddress reads it: unix:///path or tcp://host:port.
func (a Address) String() string {
	if a.Network == "tcp" {
		return "tcp://" + net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	}
	return "unix://" + a.Path
}

// Wildcard reports whether a TCP address listens on every interface.
func (a Address) Wildcard() bool {
	if a.Host == "" {
		return true
	}
	ip := net.ParseIP(a.Host)
	return ip != nil && ip.IsUnspecified()
}

// Loopback reports whether a TCP address is reachable from this host only.
func (a Address) Loopback() bool {
	if a.Host == "localhost" {
		return true
	}
	ip := net.ParseIP(a.Host)
	return ip != nil && ip.IsLoopback()
}

// Listen opens the exporter's listener on an address ParseAddress reads.
// A unix socket is created with mode 0600 (its directory, when Listen
// creates it, 0700); a stale socket of ours left by an exporter that died
// is replaced, a live one is an error, and anything else at the path (a
// file, a directory, someone else's socket) is an error and left alone. A TCP listener is plain TCP: serve it
// with [WithTLS] and [WithPassphrase] (see [Exporter.ServeWith]).
func Listen(addr string) (net.Listener, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if a.Network == "tcp" {
		lis, err := net.Listen("tcp", net.JoinHostPort(a.Host, strconv.Itoa(a.Port)))
		if err != nil {
			return nil, fmt.Errorf("exporter: listen: %w", err)
		}
		return lis, nil
	}
	path := a.Path
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("exporter: listen: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	old := syscall.Umask(0o177)
	lis, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("exporter: listen: %w", err)
	}
	return lis, nil
}

// removeStaleSocket clears path for a new socket: nothing there is fine; a
// socket of this user that refuses connections (its exporter died) is
// removed; anything else is an error and is left as it is.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("exporter: listen: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("exporter: listen: %s exists and is not a socket (%s); jw does not remove it: choose another path", path, fileKind(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("exporter: listen: %s is a socket of uid %d, not yours; jw does not remove it: choose another path", path, st.Uid)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("exporter: listen: another exporter is serving on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("exporter: listen: %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("exporter: listen: removing the stale socket: %w", err)
	}
	return nil
}

// fileKind names a file's type for an error.
func fileKind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a FIFO"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return m.Type().String()
}

// ServeOption configures how [Exporter.ServeWith] serves a listener.
type ServeOption func(*serveOptions)

type serveOptions struct {
	tls        *tls.Config
	passphrase *string
	connLimits ConnLimits
}

// WithTLS serves TLS with cfg, which holds the exporter's certificate (see
// [SelfSignedCertificate] for one made on the spot).
func WithTLS(cfg *tls.Config) ServeOption {
	return func(o *serveOptions) { o.tls = cfg }
}

// WithPassphrase requires every call (ExporterService and RouterService) to
// carry passphrase in the [PassphraseHeader] metadata; others fail with
// UNAUTHENTICATED on their headers, before any of their message is read,
// and are logged as warnings with the caller's address (at most one line
// every 10s, with a count). Serve it over TLS: the passphrase travels in
// every request.
func WithPassphrase(passphrase string) ServeOption {
	return func(o *serveOptions) { o.passphrase = &passphrase }
}

// SelfSignedCertificate makes a TLS certificate and key for serving on a:
// ECDSA P-256, valid for a year, its own issuer, for a's host; for a loopback or wildcard
// address also for 127.0.0.1, ::1 and localhost (and, for a wildcard, this
// machine's host name). It lives in memory only: clients pin it by its
// [Fingerprint].
func SelfSignedCertificate(a Address) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("exporter: self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("exporter: self-signed certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "jumpwire exporter"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// Its own issuer: BoringSSL (Python's grpcio, so upstream's client)
		// takes a trusted certificate as an issuer only if it may sign
		// certificates, and refuses this one otherwise ("unable to get
		// local issuer certificate") when it is given as a root.
		IsCA:     true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	names := []string{a.Host}
	switch {
	case a.Wildcard():
		names = nil
		if h, err := os.Hostname(); err == nil {
			names = append(names, h)
		}
		fallthrough
	case a.Loopback():
		names = append(names, "127.0.0.1", "::1", "localhost")
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if n != "" && !slices.Contains(tmpl.DNSNames, n) {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("exporter: self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("exporter: self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint is the SHA-256 fingerprint of a DER certificate, as jw prints
// it and clients pin it: "sha256:AB:CD:..." (32 bytes in upper-case hex).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
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
