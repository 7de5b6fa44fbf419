package exporter

// These tests are in package exporter (not exporter_test) to see what the
// passphrase check hands to its comparison.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tcpEcho accepts TCP connections and echoes each until its client half-closes.
func tcpEcho(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// tlsExporter is an exporter served on tcp://127.0.0.1:0 with a
// self-signed certificate and a passphrase.
type tlsExporter struct {
	e     *Exporter
	addr  string
	roots *x509.CertPool
	log   *syncBuffer
	power string // uuid of the power driver
	net   string // uuid of the network driver
	cfg   string // the config file
}

// uuid is the uuid of the node at path.
func (x *tlsExporter) uuid(t *testing.T, path string) string {
	t.Helper()
	for _, n := range x.e.nodes {
		if n.path() == path {
			return n.uuid
		}
	}
	t.Fatalf("no node %s", path)
	return ""
}

func serveTLS(t *testing.T, passphrase string) *tlsExporter {
	t.Helper()
	return serveTLSWith(t, passphrase, nil)
}

// serveTLSWith is serveTLS with the listener passed through wrap (when not
// nil) and more serve options.
func serveTLSWith(t *testing.T, passphrase string, wrap func(net.Listener) net.Listener, opts ...ServeOption) *tlsExporter {
	t.Helper()
	yaml := fmt.Sprintf(`apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {name: auth}
export:
  power: {type: jumpstarter_driver_power.driver.MockPower}
  net: {type: tcp, config: {host: 127.0.0.1, port: %d}}
`, tcpEcho(t))
	return serveTLSConfig(t, yaml, passphrase, wrap, opts...)
}

// serveTLSConfig serves the config yaml as serveTLSWith does.
func serveTLSConfig(t *testing.T, yaml, passphrase string, wrap func(net.Listener) net.Listener, opts ...ServeOption) *tlsExporter {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "exporter.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	e, err := New(t.Context(), Options{
		ConfigFile: cfg,
		PluginDirs: []string{testbin.PluginDir(t, "power", "network")},
		Logger:     hclog.New(&hclog.LoggerOptions{Name: "jw", Output: log, Level: hclog.Info}),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis, err := Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := ParseAddress("tcp://" + lis.Addr().String())
	cert, err := SelfSignedCertificate(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if wrap != nil {
		lis = wrap(lis)
	}
	opts = append(opts, WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}}), WithPassphrase(passphrase))
	go func() {
		done <- e.Serve(ctx, lis, opts...)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = e.Close(context.Background())
	})
	if _, err := e.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	x := &tlsExporter{e: e, addr: lis.Addr().String(), roots: roots, log: log, cfg: cfg}
	for _, n := range e.nodes {
		switch n.path() {
		case "power":
			x.power = n.uuid
		case "net":
			x.net = n.uuid
		}
	}
	return x
}

// conn is a client connection whose calls carry passphrase (none when
// nil); local is the address it connects from, as the exporter sees it.
func (x *tlsExporter) conn(t *testing.T, passphrase *string) (c *grpc.ClientConn, local func() string) {
	t.Helper()
	var (
		mu   sync.Mutex
		from string
	)
	opts := []grpc.DialOption{
		// The self-signed certificate is its own root, for 127.0.0.1: this
		// checks its names as well.
		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(x.roots, "")),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				mu.Lock()
				from = c.LocalAddr().String()
				mu.Unlock()
			}
			return c, err
		}),
	}
	if passphrase != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(passphraseCreds(*passphrase)))
	}
	c, err := grpc.NewClient("passthrough:///"+x.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, func() string {
		mu.Lock()
		defer mu.Unlock()
		return from
	}
}

// connFrom is a client connection made from the local address ip (another
// loopback address is another client).
func (x *tlsExporter) connFrom(t *testing.T, passphrase *string, ip string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(x.roots, "")),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			return d.DialContext(ctx, "tcp", addr)
		}),
	}
	if passphrase != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(passphraseCreds(*passphrase)))
	}
	c, err := grpc.NewClient("passthrough:///"+x.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type passphraseCreds string

func (p passphraseCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{PassphraseHeader: string(p)}, nil
}

func (passphraseCreds) RequireTransportSecurity() bool { return true }

// rpc is one call of each kind the passphrase guards.
type rpc struct {
	name string
	call func(ctx context.Context, c *grpc.ClientConn, x *tlsExporter) error
}

var guarded = []rpc{
	{"GetReport", func(ctx context.Context, c *grpc.ClientConn, _ *tlsExporter) error {
		_, err := jumpstarterv1.NewExporterServiceClient(c).GetReport(ctx, &emptypb.Empty{})
		return err
	}},
	{"DriverCall", func(ctx context.Context, c *grpc.ClientConn, x *tlsExporter) error {
		_, err := jumpstarterv1.NewExporterServiceClient(c).DriverCall(ctx,
			&jumpstarterv1.DriverCallRequest{Uuid: x.power, Method: "on"})
		return err
	}},
	{"StreamingDriverCall", func(ctx context.Context, c *grpc.ClientConn, x *tlsExporter) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := jumpstarterv1.NewExporterServiceClient(c).StreamingDriverCall(ctx,
			&jumpstarterv1.StreamingDriverCallRequest{Uuid: x.power, Method: "read"})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}},
	{"Stream", func(ctx context.Context, c *grpc.ClientConn, x *tlsExporter) error {
		ctx = metadata.AppendToOutgoingContext(ctx, "request",
			fmt.Sprintf(`{"kind":"driver","uuid":%q,"method":"connect"}`, x.net))
		s, err := jumpstarterv1.NewRouterServiceClient(c).Stream(ctx)
		if err != nil {
			return err
		}
		if _, err := s.Header(); err != nil {
			return err
		}
		if err := s.Send(&jumpstarterv1.StreamRequest{Payload: []byte("ping")}); errors.Is(err, io.EOF) {
			_, err = s.Recv() // the stream is over: its status
			return err
		} else if err != nil {
			return err
		}
		_ = s.Send(&jumpstarterv1.StreamRequest{FrameType: jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY})
		var got []byte
		for {
			m, err := s.Recv()
			if err != nil {
				return err
			}
			if m.FrameType == jumpstarterv1.FrameType_FRAME_TYPE_GOAWAY {
				break
			}
			got = append(got, m.Payload...)
		}
		if string(got) != "ping" {
			return fmt.Errorf("echo %q, want ping", got)
		}
		_, err = s.Recv()
		if status.Code(err) != codes.Aborted {
			return fmt.Errorf("after GOAWAY: %w, want ABORTED", err)
		}
		return nil
	}},
}

// TestPassphrase: over TLS on TCP, the right passphrase reaches every
// service; a wrong or missing one gets UNAUTHENTICATED for each, never
// reaches a driver, and is logged with the caller's address, without one
// line per refusal.
func TestPassphrase(t *testing.T) {
	began := time.Now()
	x := serveTLS(t, "correct horse")
	right, wrong, prefix := "correct horse", "correct hors", "correct horse battery"

	t.Run("right", func(t *testing.T) {
		c, _ := x.conn(t, &right)
		for _, r := range guarded {
			if err := r.call(t.Context(), c, x); err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
		}
	})

	// The power switch is on now; refused calls must not turn it off.
	off := func(ctx context.Context, c *grpc.ClientConn, x *tlsExporter) error {
		_, err := jumpstarterv1.NewExporterServiceClient(c).DriverCall(ctx,
			&jumpstarterv1.DriverCallRequest{Uuid: x.power, Method: "off"})
		return err
	}
	for name, p := range map[string]*string{"wrong": &wrong, "longer": &prefix, "missing": nil} {
		t.Run(name, func(t *testing.T) {
			c, _ := x.conn(t, p)
			calls := append([]rpc{{"DriverCall off", off}}, guarded...)
			for _, r := range calls {
				err := r.call(t.Context(), c, x)
				if s := status.Convert(err); s.Code() != codes.Unauthenticated || s.Message() != "wrong or missing passphrase" {
					t.Errorf("%s: %v, want UNAUTHENTICATED: wrong or missing passphrase", r.name, err)
				}
			}
		})
	}
	// The first refusal is logged with the caller's address; the rest are
	// counted into a summary at most every rateLogEvery.
	logged := x.log.String()
	line := regexp.MustCompile(`(?m)^.*\[WARN\] +jw\.auth: refused a call: wrong or missing passphrase: peer=127\.0\.0\.1:\d+ .*$`)
	if !line.MatchString(logged) {
		t.Errorf("no warning with the caller's address in the log:\n%s", logged)
	}
	if n, most := strings.Count(logged, "refused a call"), 2+int(time.Since(began)/rateLogEvery); n > most {
		t.Errorf("logged %d refusals in %s, want at most %d lines:\n%s", n, time.Since(began), most, logged)
	}

	c, _ := x.conn(t, &right)
	r, err := jumpstarterv1.NewExporterServiceClient(c).DriverCall(t.Context(),
		&jumpstarterv1.DriverCallRequest{Uuid: x.power, Method: "state"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Result.GetBoolValue() {
		t.Error("the power switch is off: a refused call reached the driver")
	}
}

// TestPassphraseConstantTime: the check compares fixed-length hashes with
// subtle.ConstantTimeCompare, whatever the length of what is sent.
func TestPassphraseConstantTime(t *testing.T) {
	a := newPassphraseAuth("s3cret", hclog.NewNullLogger())
	if reflect.ValueOf(a.equal).Pointer() != reflect.ValueOf(subtle.ConstantTimeCompare).Pointer() {
		t.Fatal("the passphrase is not compared with subtle.ConstantTimeCompare")
	}
	var lens [][2]int
	a.equal = func(x, y []byte) int {
		lens = append(lens, [2]int{len(x), len(y)})
		return subtle.ConstantTimeCompare(x, y)
	}
	for _, tt := range []struct {
		given []string
		ok    bool
	}{
		{[]string{"s3cret"}, true},
		{[]string{"s"}, false},
		{[]string{"s3cre"}, false},
		{[]string{"s3cret and a much longer tail than the passphrase has"}, false},
		{[]string{""}, false},
		{nil, false},
		{[]string{"s3cret", "s3cret"}, false},
	} {
		lens = nil
		md := metadata.MD{}
		if tt.given != nil {
			md.Append(PassphraseHeader, tt.given...)
		}
		err := a.check(md, nil, "/test")
		if (err == nil) != tt.ok {
			t.Errorf("%q: %v, want ok=%v", tt.given, err, tt.ok)
		}
		if len(lens) != 1 || lens[0] != [2]int{sha256.Size, sha256.Size} {
			t.Errorf("%q: compared lengths %v, want one comparison of two %d-byte hashes", tt.given, lens, sha256.Size)
		}
	}
}

// TestSelfSignedCertificate: ECDSA P-256, names for the host, loopback
// names for loopback and wildcard hosts, and the fingerprint of its DER.
func TestSelfSignedCertificate(t *testing.T) {
	hostname, _ := os.Hostname()
	for _, tt := range []struct {
		listen string
		dns    []string
		ips    []string
	}{
		{"tcp://127.0.0.1:0", []string{"localhost"}, []string{"127.0.0.1", "::1"}},
		{"tcp://[::1]:7777", []string{"localhost"}, []string{"::1", "127.0.0.1"}},
		{"tcp://localhost:0", []string{"localhost"}, []string{"127.0.0.1", "::1"}},
		{"tcp://lab-1.example:7777", []string{"lab-1.example"}, nil},
		{"tcp://192.0.2.7:7777", nil, []string{"192.0.2.7"}},
		{"tcp://:7777", []string{hostname, "localhost"}, []string{"127.0.0.1", "::1"}},
		{"tcp://0.0.0.0:7777", []string{hostname, "localhost"}, []string{"127.0.0.1", "::1"}},
	} {
		t.Run(tt.listen, func(t *testing.T) {
			a, err := ParseAddress(tt.listen)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := SelfSignedCertificate(a)
			if err != nil {
				t.Fatal(err)
			}
			leaf := cert.Leaf
			if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
			}
			for _, name := range append(append([]string{}, tt.dns...), tt.ips...) {
				if err := leaf.VerifyHostname(name); err != nil {
					t.Errorf("not valid for %s: %v", name, err)
				}
			}
			if got := len(leaf.DNSNames) + len(leaf.IPAddresses); got != len(tt.dns)+len(tt.ips) {
				t.Errorf("names %v %v, want %v %v", leaf.DNSNames, leaf.IPAddresses, tt.dns, tt.ips)
			}
			sum := sha256.Sum256(cert.Certificate[0])
			want := "sha256:" + strings.ToUpper(strings.Join(regexp.MustCompile("..").FindAllString(fmt.Sprintf("%x", sum), -1), ":"))
			if got := Fingerprint(cert.Certificate[0]); got != want {
				t.Errorf("Fingerprint %s, want %s", got, want)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Address
		err  string
	}{
		{in: "unix:///run/e.sock", want: Address{Network: "unix", Path: "/run/e.sock"}},
		{in: "unix:e.sock", want: Address{Network: "unix", Path: "e.sock"}},
		{in: "/run/e.sock", want: Address{Network: "unix", Path: "/run/e.sock"}},
		{in: "tcp://127.0.0.1:0", want: Address{Network: "tcp", Host: "127.0.0.1"}},
		{in: "tcp://:7777", want: Address{Network: "tcp", Port: 7777}},
		{in: "tcp://[::1]:65535", want: Address{Network: "tcp", Host: "::1", Port: 65535}},
		{in: "tcp://lab-1:7777", want: Address{Network: "tcp", Host: "lab-1", Port: 7777}},
		{in: "http://lab-1:80", err: `exporter: listen address "http://lab-1:80": unknown scheme "http" (want unix:///PATH or tcp://HOST:PORT)`},
		{in: "tcp://lab-1", err: `exporter: listen address "tcp://lab-1": no port (want tcp://HOST:PORT; port 0 picks a free one)`},
		{in: "tcp://lab-1:", err: `exporter: listen address "tcp://lab-1:": no port (want tcp://HOST:PORT; port 0 picks a free one)`},
		{in: "tcp://", err: `exporter: listen address "tcp://": no port (want tcp://HOST:PORT; port 0 picks a free one)`},
		{in: "tcp://lab-1:http", err: `exporter: listen address "tcp://lab-1:http": port "http" is not a number from 0 to 65535`},
		{in: "tcp://lab-1:65536", err: `exporter: listen address "tcp://lab-1:65536": port "65536" is not a number from 0 to 65535`},
		{in: "tcp://lab-1:-1", err: `exporter: listen address "tcp://lab-1:-1": port "-1" is not a number from 0 to 65535`},
		{in: "tcp://[::1:7777", err: `exporter: listen address "tcp://[::1:7777": want tcp://HOST:PORT (missing ']' in address)`},
		{in: "unix://", err: `exporter: listen address "unix://": no socket path`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAddress(tt.in)
			switch {
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("error %v\nwant %s", err, tt.err)
			case tt.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.err == "" && got != tt.want:
				t.Errorf("%+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestListenUnixMode: a unix socket is 0600, a directory Listen makes 0700.
func TestListenUnixMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	lis, err := Listen("unix://" + filepath.Join(dir, "e.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "e.sock"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// TestListenLeavesOtherFilesAlone: Listen replaces a stale socket, refuses
// a live one, and refuses (and leaves as they are) a regular file, a
// directory, a symbolic link and a FIFO at the socket's path.
func TestListenLeavesOtherFilesAlone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{file: "a regular file", link: "a symbolic link", fifo: "a FIFO", sub: "a directory"} {
		lis, err := Listen("unix://" + path)
		if err == nil {
			lis.Close()
			t.Errorf("%s: Listen replaced %s", path, kind)
			continue
		}
		if !strings.Contains(err.Error(), "is not a socket ("+kind+")") {
			t.Errorf("%s: %v; want it to say it is %s", path, err, kind)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "mine" {
		t.Errorf("the file at the socket path: %q %v", b, err)
	}

	// A stale socket (nobody accepts on it) is replaced; a live one is not.
	sock := filepath.Join(dir, "e.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	live, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer live.Close()
	if _, err := Listen("unix://" + sock); err == nil || !strings.Contains(err.Error(), "another exporter") {
		t.Errorf("over a live socket: %v", err)
	}
}
