package controllertest

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
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/routerconn"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// router pairs the two streams that present the same token.
type router struct {
	jumpstarterv1.UnimplementedRouterServiceServer
	addr string
	srv  *grpc.Server

	mu      sync.Mutex
	tokens  map[string]bool
	pending map[string]*pendingStream
	streams int // streams forwarded so far
}

type pendingStream struct {
	stream jumpstarterv1.RouterService_StreamServer
	cancel context.CancelFunc
}

func startRouter(pair *tlsPair) (*router, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("controllertest: router listen: %w", err)
	}
	r := &router{addr: lis.Addr().String(), tokens: map[string]bool{}, pending: map[string]*pendingStream{}}
	r.srv = grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&pair.cert)))
	jumpstarterv1.RegisterRouterServiceServer(r.srv, r)
	go func() { _ = r.srv.Serve(lis) }()
	return r, nil
}

func (r *router) stop() { r.srv.Stop() }

func (r *router) allow(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens[token] = true
}

// Stream authenticates the token, waits for the other side, and forwards.
func (r *router) Stream(stream jumpstarterv1.RouterService_StreamServer) error {
	token, err := bearer(stream.Context())
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "missing or invalid authorization: %v", err)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	r.mu.Lock()
	if !r.tokens[token] {
		r.mu.Unlock()
		return status.Error(codes.Unauthenticated, "invalid jwt token")
	}
	first, paired := r.pending[token]
	if !paired {
		r.pending[token] = &pendingStream{stream: stream, cancel: cancel}
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		if r.pending[token] != nil && r.pending[token].stream == stream {
			delete(r.pending, token)
		}
		r.mu.Unlock()
		return nil
	}
	delete(r.pending, token)
	r.streams++
	r.mu.Unlock()
	defer first.cancel()
	return forward(ctx, stream, first.stream)
}

// forward pipes both ways until either fails or both end.
func forward(ctx context.Context, a, b jumpstarterv1.RouterService_StreamServer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	for _, p := range [][2]jumpstarterv1.RouterService_StreamServer{{a, b}, {b, a}} {
		go func() { errs <- pipe(p[0], p[1]) }()
	}
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func pipe(from, to jumpstarterv1.RouterService_StreamServer) error {
	for {
		msg, err := from.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := to.Send(&jumpstarterv1.StreamResponse{Payload: msg.GetPayload(), FrameType: msg.GetFrameType()}); err != nil {
			return err
		}
	}
}

// Streams is how many router streams have been paired so far.
func (d *Double) Streams() int {
	d.router.mu.Lock()
	defer d.router.mu.Unlock()
	return d.router.streams
}

// Connect is a client of a lease: each connection it makes Dials and runs
// over its own router stream, as upstream's client does (client/lease.py),
// which retries Dial with backoff for up to a minute while the exporter is
// not ready or not listening yet. The returned connection serves the
// exporter's ExporterService and RouterService. Close it when done.
func (d *Double) Connect(lease string) (*grpc.ClientConn, error) {
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		resp, err := d.dialWithRetry(ctx, lease)
		if err != nil {
			return nil, err
		}
		return d.routerStream(ctx, resp.RouterEndpoint, resp.RouterToken)
	}
	opts := append(protocol.DialOptions(protocol.TCP),
		grpc.WithContextDialer(dialer),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	return grpc.NewClient("passthrough:///"+lease, opts...)
}

// dialWithRetry retries Dial as upstream's client does.
func (d *Double) dialWithRetry(ctx context.Context, lease string) (*jumpstarterv1.DialResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		resp, err := d.dial(ctx, lease)
		retry := status.Code(err) == codes.Unavailable ||
			status.Code(err) == codes.FailedPrecondition && strings.Contains(status.Convert(err).Message(), "not ready")
		if err == nil || !retry {
			return resp, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, err
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// routerStream opens the client's side of a router stream, as a net.Conn.
func (d *Double) routerStream(ctx context.Context, endpoint, token string) (net.Conn, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(d.tls.certPEM)
	opts := append(protocol.DialOptions(protocol.TCP|protocol.TLS),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})),
		grpc.WithPerRPCCredentials(tokenCreds(token)))
	conn, err := grpc.NewClient(endpoint, opts...)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := jumpstarterv1.NewRouterServiceClient(conn).Stream(sctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	return routerconn.New(stream, func() { cancel(); conn.Close() }, routerconn.Addr("client"), routerconn.Addr(endpoint)), nil
}

type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return true }

// tlsPair is the double's certificate, for 127.0.0.1 and localhost.
type tlsPair struct {
	cert    tls.Certificate
	certPEM []byte
}

func newTLSPair() (*tlsPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "controllertest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tlsPair{
		cert:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}
