package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// HostEnv is the environment variable that names the exporter to use when [Dial] is given no
// target. `jw shell` sets it for the shell it starts.
const HostEnv = "JUMPSTARTER_HOST"

// Sentinel errors, checked with errors.Is.
var (
	// ErrNoHost means Dial was given no target and HostEnv is not set.
	ErrNoHost = errors.New(HostEnv + ` is not set (run inside "jw shell" or pass the exporter's socket)`)
	// ErrUnreachable means nothing answers at the exporter's address: the socket does not exist,
	// nobody listens on it, or the connection broke.
	ErrUnreachable = errors.New("cannot reach exporter")
	// ErrNoDriver means a path or word names no driver in the tree.
	ErrNoDriver = errors.New("no such driver")
)

// Option configures [Dial].
type Option func(*options)

type options struct {
	dialOptions []grpc.DialOption
	// TCP only (tls.go):
	tlsCA, fingerprint string
	insecure           bool
	passphrase         *string
}

// WithDialOptions adds gRPC dial options, applied after the defaults (plain-text gRPC over a unix
// socket; TLS or plaintext, and the passphrase, over TCP), so they can override them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// Client is a connection to one exporter. It is safe for concurrent use.
type Client struct {
	addr string
	sock string // the exporter's unix socket, absolute; "" over TCP or FromConn
	tcp  bool   // dialed over TCP (the admin service is not there)
	conn *grpc.ClientConn
	svc  jumpstarterv1.ExporterServiceClient

	closeOnce sync.Once
	closeErr  error

	mu    sync.RWMutex
	paths map[string]string // uuid -> dotted path, learned from Tree, used to name errors
}

// Dial connects to an exporter. target is "unix:///path/to.sock", "unix:/path", or a bare path; or
// "tcp://HOST:PORT" (or a bare HOST:PORT) for an exporter served over TCP; "" means the address in
// the HostEnv environment variable (ErrNoHost when it is unset).
//
// Dial checks that something listens at the address (ErrUnreachable otherwise, with the reason);
// ctx bounds that check only. Over TCP it uses TLS, trusting the system's certificate authorities
// unless [WithTLSCA], [WithTLSFingerprint] or [WithInsecure] says otherwise, and it also checks the
// TLS handshake (ErrNotTLS, ErrCertificate) and, with one GetStatus call, the passphrase
// (ErrPassphrase) and plaintext sent to a TLS exporter (ErrTLSOnly). Close the client when done.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	if target == "" {
		target = os.Getenv(HostEnv)
		if target == "" {
			return nil, ErrNoHost
		}
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if hostport, ok, err := tcpTarget(target); err != nil {
		return nil, err
	} else if ok {
		return dialTCP(ctx, target, hostport, &o)
	}
	if o.tlsCA != "" || o.fingerprint != "" {
		return nil, fmt.Errorf("exporter address %q: a TLS CA or fingerprint applies to tcp:// addresses only", target)
	}
	path, err := socketPath(target)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("exporter address %q: %w", target, err)
	}

	var d net.Dialer
	probe, err := d.DialContext(ctx, "unix", abs)
	if err != nil {
		return nil, &unreachableError{addr: path, err: err}
	}
	_ = probe.Close()

	dialOpts := append(append(protocol.DialOptions(protocol.Unix),
		grpc.WithTransportCredentials(insecure.NewCredentials())), o.dialOptions...)
	conn, err := grpc.NewClient("unix://"+abs, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("exporter address %q: %w", target, err)
	}
	return &Client{
		addr: path,
		sock: abs,
		conn: conn,
		svc:  jumpstarterv1.NewExporterServiceClient(conn),
	}, nil
}

// FromConn returns a Client on a gRPC connection made elsewhere, for
// transports Dial does not make (a connection carried by a Jumpstarter
// router, say). name names the exporter in errors. The connection should
// use protocol.DialOptions, whose codec byte streams need. Closing the
// Client closes conn.
func FromConn(conn *grpc.ClientConn, name string) *Client {
	return &Client{addr: name, conn: conn, svc: jumpstarterv1.NewExporterServiceClient(conn)}
}

// socketPath extracts the socket path from a unix target.
func socketPath(target string) (string, error) {
	var path string
	switch {
	case strings.HasPrefix(target, "unix://"):
		path = strings.TrimPrefix(target, "unix://")
	case strings.HasPrefix(target, "unix:"):
		path = strings.TrimPrefix(target, "unix:")
	case strings.Contains(target, "://"):
		return "", fmt.Errorf("exporter address %q: want unix:///path/to.sock, a path, or tcp://HOST:PORT", target)
	default:
		path = target
	}
	if path == "" {
		return "", fmt.Errorf("exporter address %q: no socket path", target)
	}
	return path, nil
}

// Close closes the connection. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// Raw returns the generated jumpstarter.v1 client on the same connection, for what this package
// does not wrap (LogStream, Reset). Its errors are not wrapped.
func (c *Client) Raw() jumpstarterv1.ExporterServiceClient { return c.svc }

// Tree reads the exporter's report (GetReport) and builds the driver tree from it.
func (c *Client) Tree(ctx context.Context) (*Tree, error) {
	resp, err := c.svc.GetReport(ctx, &emptypb.Empty{})
	if err != nil {
		return nil, c.wrap(ctx, "get report", err)
	}
	t, err := NewTree(resp)
	if err != nil {
		return nil, err
	}
	paths := make(map[string]string)
	t.Walk(func(d *Driver, _ int) { paths[d.UUID] = d.Path })
	c.mu.Lock()
	c.paths = paths
	c.mu.Unlock()
	return t, nil
}

// Status reports the exporter's lease state (GetStatus).
func (c *Client) Status(ctx context.Context) (*jumpstarterv1.GetStatusResponse, error) {
	resp, err := c.svc.GetStatus(ctx, &jumpstarterv1.GetStatusRequest{})
	if err != nil {
		return nil, c.wrap(ctx, "get status", err)
	}
	return resp, nil
}

// EndSession asks the exporter to end the current session. It reports whether the exporter ended
// one and the exporter's message (for example why it did not).
func (c *Client) EndSession(ctx context.Context) (bool, string, error) {
	resp, err := c.svc.EndSession(ctx, &jumpstarterv1.EndSessionRequest{})
	if err != nil {
		return false, "", c.wrap(ctx, "end session", err)
	}
	return resp.GetSuccess(), resp.GetMessage(), nil
}

// opName names a call for error messages: the driver's dotted path when known, then the method.
func (c *Client) opName(uuid, method string) string {
	c.mu.RLock()
	path, ok := c.paths[uuid]
	c.mu.RUnlock()
	switch {
	case !ok:
		return uuid + "." + method
	case path == "":
		return method
	default:
		return path + "." + method
	}
}
