// Package controllertest is a test double of a Jumpstarter controller and
// its router, for testing jumpwire's controller mode on loopback.
//
// It follows what upstream's controller does as its source shows it
// (controller/internal/service/controller_service.go, router_service.go,
// router_support.go, auth and oidc packages of jumpstarter-dev/jumpstarter):
//   - exporters authenticate with `authorization: Bearer <token>` and
//     `jumpstarter-kind: Exporter`, `jumpstarter-namespace`,
//     `jumpstarter-name`; right after a start it may answer
//     "oidc: authenticator not initialized" (code UNKNOWN) as a controller
//     whose OIDC authenticator is not ready does;
//   - Register keeps only jumpstarter.dev/* labels and answers the
//     exporter object's uid, which never changes;
//   - Status sends the lease state on connect and at every change, never
//     the same message twice in a row;
//   - Listen requires the lease to be held by the caller; a reconnecting
//     Listen replaces the previous one; tokens wait in a queue of 8;
//   - Dial refuses an exporter that is OFFLINE or whose hook failed, and
//     waits (up to DialWait) while it still reports AVAILABLE; it pushes a
//     ListenResponse with the same router address and token it answers;
//   - ReleaseLease from an exporter requires the lease to be its own and
//     is idempotent; ReportStatus(release_lease) releases too;
//   - Unregister drops the devices and marks the exporter offline;
//   - the router pairs the two streams presenting the same token and
//     forwards every frame as it came, frame type included, until either
//     side fails or both have finished.
//
// Clients: Dial authenticates `jumpstarter-kind: Client` and a client token
// (AddClient) and requires the lease to be the caller's.
//
// What it does not model: Kubernetes (objects live in memory), JWT
// signatures and expiry (a token is an opaque random string), label
// selectors, lease durations and the client-facing lease calls
// (RequestLease, GetLease, upstream's client.v1 ClientService: a test
// assigns and ends leases), router selection by labels, the
// exporter-offline timeout, and telemetry.
package controllertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Options configure a Double.
type Options struct {
	// NotReadyCalls is how many calls after each controller start are
	// answered "oidc: authenticator not initialized".
	NotReadyCalls int
	// NoServiceEndpoints answers GetServiceEndpoints with UNIMPLEMENTED, as
	// controllers before it did.
	NoServiceEndpoints bool
	// OldRelease refuses ReleaseLease from exporters (PERMISSION_DENIED),
	// as controllers before exporter releases did; they take
	// ReportStatus(release_lease) instead.
	OldRelease bool
	// DialWait bounds how long Dial waits for an exporter still reporting
	// AVAILABLE. Default 30 s, as upstream.
	DialWait time.Duration
}

// Exporter is what the double knows of one exporter.
type Exporter struct {
	Namespace, Name, Token string
	UID                    string
	Registrations          int
	Labels                 map[string]string
	Devices                []*jumpstarterv1.DriverInstanceReport
	Status                 jumpstarterv1.ExporterStatus
	Message                string
	History                []jumpstarterv1.ExporterStatus // every status reported, in order
	Unregistered           bool
	LeaseName              string // the lease it holds, "" for none
	LastSeen               time.Time
}

// Lease is a lease the double assigned.
type Lease struct {
	Name, Exporter, Client string
	Ended                  bool
	ReleasedBy             string // "exporter", "exporter (ReportStatus)", "test"
}

// Double is a controller and a router on loopback, with TLS.
type Double struct {
	opts Options
	tls  *tlsPair

	mu        sync.Mutex
	exporters map[string]*Exporter // by name
	clients   map[string]string    // token -> client name
	leases    map[string]*Lease
	listeners map[string]*listenQueue // by lease
	changed   chan struct{}           // closed and replaced at every change
	notReady  int
	seq       int

	ctlAddr string
	ctlSrv  *grpc.Server

	router *router
}

// New starts a controller and a router on 127.0.0.1 with a self-signed
// certificate (CA returns it). Close stops both.
func New(opts Options) (*Double, error) {
	if opts.DialWait == 0 {
		opts.DialWait = 30 * time.Second
	}
	pair, err := newTLSPair()
	if err != nil {
		return nil, err
	}
	d := &Double{
		opts: opts, tls: pair,
		exporters: map[string]*Exporter{},
		clients:   map[string]string{},
		leases:    map[string]*Lease{},
		listeners: map[string]*listenQueue{},
		changed:   make(chan struct{}),
	}
	d.router, err = startRouter(pair)
	if err != nil {
		return nil, err
	}
	if err := d.StartController(); err != nil {
		d.router.stop()
		return nil, err
	}
	return d, nil
}

// CA is the PEM certificate both servers present.
func (d *Double) CA() []byte { return d.tls.certPEM }

// ControllerAddr is the controller's host:port.
func (d *Double) ControllerAddr() string { return d.ctlAddr }

// RouterAddr is the router's host:port.
func (d *Double) RouterAddr() string { return d.router.addr }

// serverOptions are the double's gRPC server options: TLS, and pings as
// often as upstream's clients send them.
func (d *Double) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewServerTLSFromCert(&d.tls.cert)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	}
}

// StartController starts the controller (again, after StopController, on
// the same address). Its state (exporters, leases) survives, as it does in
// Kubernetes; what upstream keeps in memory (Listen queues) does not.
func (d *Double) StartController() error {
	addr := d.ctlAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	for range 100 { // the old socket may linger for a moment
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("controllertest: listen: %w", err)
	}
	srv := grpc.NewServer(d.serverOptions()...)
	jumpstarterv1.RegisterControllerServiceServer(srv, &controller{d: d})
	d.mu.Lock()
	d.ctlAddr, d.ctlSrv = lis.Addr().String(), srv
	d.notReady = d.opts.NotReadyCalls
	d.listeners = map[string]*listenQueue{}
	d.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// StopController stops the controller as a crash would: every stream and
// connection breaks. The router keeps running.
func (d *Double) StopController() {
	d.mu.Lock()
	srv := d.ctlSrv
	d.ctlSrv = nil
	d.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Close stops the controller and the router.
func (d *Double) Close() {
	d.StopController()
	d.router.stop()
}

// AddExporter creates an exporter object, as `jmp admin create exporter`
// does; its token is what the exporter's config must carry.
func (d *Double) AddExporter(namespace, name string) (token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	token = randomToken()
	d.exporters[name] = &Exporter{
		Namespace: namespace, Name: name, Token: token, UID: randomToken()[:16],
		Status: jumpstarterv1.ExporterStatus_EXPORTER_STATUS_UNSPECIFIED,
	}
	return token
}

// AddClient creates a client object; its token is what the client's
// config must carry (`jumpstarter-kind: Client`).
func (d *Double) AddClient(name string) (token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	token = randomToken()
	d.clients[token] = name
	return token
}

// Exporter returns a copy of what the double knows of an exporter.
func (d *Double) Exporter(name string) Exporter {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := *d.exporters[name]
	x.History = slices.Clone(x.History)
	return x
}

// Lease returns a copy of a lease.
func (d *Double) Lease(name string) Lease {
	d.mu.Lock()
	defer d.mu.Unlock()
	return *d.leases[name]
}

// Wait waits until cond holds or ctx ends; cond runs (without the
// double's lock: it may call Exporter, Lease, ...) after every change.
func (d *Double) Wait(ctx context.Context, cond func() bool) error {
	for {
		d.mu.Lock()
		ch := d.changed
		d.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitStatus waits until the exporter reports st.
func (d *Double) WaitStatus(ctx context.Context, exporter string, st jumpstarterv1.ExporterStatus) error {
	err := d.Wait(ctx, func() bool { return d.Exporter(exporter).Status == st })
	if err != nil {
		x := d.Exporter(exporter)
		return fmt.Errorf("exporter %s reports %s (%q), not %s: %w", exporter, x.Status, x.Message, st, err)
	}
	return nil
}

// notify wakes every waiter; d.mu must be held.
func (d *Double) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// AssignLease leases an exporter to a client, as the lease controller does
// for a matching request: the exporter must be AVAILABLE and hold no lease.
func (d *Double) AssignLease(exporter, client string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x, ok := d.exporters[exporter]
	switch {
	case !ok:
		return "", fmt.Errorf("controllertest: no exporter %s", exporter)
	case x.LeaseName != "":
		return "", fmt.Errorf("controllertest: exporter %s is leased (%s)", exporter, x.LeaseName)
	case x.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE:
		return "", fmt.Errorf("controllertest: exporter %s is %s, not AVAILABLE", exporter, x.Status)
	}
	d.seq++
	name := fmt.Sprintf("lease-%d-%s", d.seq, randomToken()[:6])
	d.leases[name] = &Lease{Name: name, Exporter: exporter, Client: client}
	x.LeaseName = name
	d.notify()
	return name, nil
}

// EndLease ends a lease as its expiry or the client's release does.
func (d *Double) EndLease(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.endLeaseLocked(name, "test")
}

func (d *Double) endLeaseLocked(name, by string) {
	l, ok := d.leases[name]
	if !ok || l.Ended {
		return
	}
	l.Ended, l.ReleasedBy = true, by
	if x := d.exporters[l.Exporter]; x != nil && x.LeaseName == name {
		x.LeaseName = ""
	}
	if q := d.listeners[name]; q != nil {
		q.close()
		delete(d.listeners, name)
	}
	d.notify()
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// listenQueue is one Listen call's queue of router tokens.
type listenQueue struct {
	ch   chan *jumpstarterv1.ListenResponse
	done chan struct{}
	once sync.Once
}

func (q *listenQueue) close() { q.once.Do(func() { close(q.done) }) }

// bearer extracts the token from `authorization: Bearer <token>`.
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	switch {
	case len(auth) == 0:
		return "", status.Error(codes.Unauthenticated, "missing authorization header")
	case len(auth) > 1:
		return "", status.Error(codes.InvalidArgument, "multiple authorization headers")
	case len(auth[0]) < 7 || !strings.EqualFold(auth[0][:7], "Bearer "):
		return "", status.Error(codes.InvalidArgument, "malformed authorization header")
	}
	return auth[0][7:], nil
}

// exporterOf authenticates an exporter's call; d.mu must be held.
func (d *Double) exporterOf(ctx context.Context) (*Exporter, error) {
	if d.notReady > 0 {
		d.notReady--
		return nil, status.Error(codes.Unknown, "oidc: authenticator not initialized")
	}
	token, err := bearer(ctx)
	if err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	one := func(k string) string {
		if v := md.Get(k); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	var x *Exporter
	for _, e := range d.exporters {
		if e.Token == token {
			x = e
		}
	}
	switch {
	case x == nil:
		return nil, status.Error(codes.Unauthenticated, "failed to authenticate token")
	case one("jumpstarter-kind") != "Exporter":
		return nil, status.Error(codes.InvalidArgument, "object kind mismatch")
	case one("jumpstarter-namespace") != x.Namespace || one("jumpstarter-name") != x.Name:
		return nil, status.Errorf(codes.PermissionDenied, "permission denied for exporter %s/%s",
			one("jumpstarter-namespace"), one("jumpstarter-name"))
	}
	x.LastSeen = time.Now()
	return x, nil
}

// clientOf authenticates a client's call; d.mu must be held.
func (d *Double) clientOf(ctx context.Context) (string, error) {
	token, err := bearer(ctx)
	if err != nil {
		return "", err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	name, ok := d.clients[token]
	switch {
	case !ok:
		return "", status.Error(codes.Unauthenticated, "failed to authenticate token")
	case len(md.Get("jumpstarter-kind")) != 1 || md.Get("jumpstarter-kind")[0] != "Client":
		return "", status.Error(codes.InvalidArgument, "object kind mismatch")
	}
	return name, nil
}

// statusOf is the Status stream's message for an exporter; d.mu held.
func (d *Double) statusOf(x *Exporter) *jumpstarterv1.StatusResponse {
	r := &jumpstarterv1.StatusResponse{Leased: x.LeaseName != ""}
	if r.Leased {
		name, client := x.LeaseName, d.leases[x.LeaseName].Client
		r.LeaseName, r.ClientName = &name, &client
	}
	return r
}

// sameStatus compares Status messages as upstream does (proto.Equal).
func sameStatus(a, b *jumpstarterv1.StatusResponse) bool { return a != nil && proto.Equal(a, b) }
