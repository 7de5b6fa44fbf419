package controllertest

import (
	"context"
	"strings"
	"time"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// controller implements the exporter's half of ControllerService.
type controller struct {
	jumpstarterv1.UnimplementedControllerServiceServer
	d *Double
}

func (c *controller) Register(ctx context.Context, req *jumpstarterv1.RegisterRequest) (*jumpstarterv1.RegisterResponse, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	x, err := d.exporterOf(ctx)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for k, v := range req.Labels {
		if strings.HasPrefix(k, "jumpstarter.dev/") {
			labels[k] = v
		}
	}
	x.Labels, x.Devices = labels, req.Reports
	x.Registrations++
	x.Unregistered = false
	d.notify()
	return &jumpstarterv1.RegisterResponse{Uuid: x.UID}, nil
}

func (c *controller) Unregister(ctx context.Context, req *jumpstarterv1.UnregisterRequest) (*jumpstarterv1.UnregisterResponse, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	x, err := d.exporterOf(ctx)
	if err != nil {
		return nil, err
	}
	x.Devices, x.Unregistered = nil, true
	x.Status, x.Message = jumpstarterv1.ExporterStatus_EXPORTER_STATUS_OFFLINE, req.Reason
	d.notify()
	return &jumpstarterv1.UnregisterResponse{}, nil
}

func (c *controller) ReportStatus(ctx context.Context, req *jumpstarterv1.ReportStatusRequest) (*jumpstarterv1.ReportStatusResponse, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	x, err := d.exporterOf(ctx)
	if err != nil {
		return nil, err
	}
	x.Status, x.Message = req.Status, req.GetMessage()
	x.History = append(x.History, req.Status)
	if req.GetReleaseLease() && x.LeaseName != "" {
		d.endLeaseLocked(x.LeaseName, "exporter (ReportStatus)")
	}
	d.notify()
	return &jumpstarterv1.ReportStatusResponse{}, nil
}

func (c *controller) GetServiceEndpoints(ctx context.Context, _ *jumpstarterv1.GetServiceEndpointsRequest) (*jumpstarterv1.GetServiceEndpointsResponse, error) {
	d := c.d
	if d.opts.NoServiceEndpoints {
		return nil, status.Error(codes.Unimplemented, "unknown method GetServiceEndpoints")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.exporterOf(ctx); err != nil {
		return nil, err
	}
	return &jumpstarterv1.GetServiceEndpointsResponse{}, nil
}

func (c *controller) ReleaseLease(ctx context.Context, req *jumpstarterv1.ReleaseLeaseRequest) (*jumpstarterv1.ReleaseLeaseResponse, error) {
	d := c.d
	if d.opts.OldRelease {
		return nil, status.Error(codes.PermissionDenied, "permission denied")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	x, err := d.exporterOf(ctx)
	if err != nil {
		return nil, err
	}
	l, ok := d.leases[req.Name]
	switch {
	case !ok:
		return nil, status.Errorf(codes.NotFound, "lease %s not found", req.Name)
	case l.Exporter != x.Name:
		return nil, status.Errorf(codes.FailedPrecondition, "lease %s is not held by exporter %s", req.Name, x.Name)
	}
	d.endLeaseLocked(req.Name, "exporter")
	return &jumpstarterv1.ReleaseLeaseResponse{}, nil
}

func (c *controller) Status(_ *jumpstarterv1.StatusRequest, stream jumpstarterv1.ControllerService_StatusServer) error {
	d := c.d
	ctx := stream.Context()
	d.mu.Lock()
	x, err := d.exporterOf(ctx)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	var last *jumpstarterv1.StatusResponse
	for {
		d.mu.Lock()
		cur, ch := d.statusOf(x), d.changed
		d.mu.Unlock()
		if !sameStatus(last, cur) {
			if err := stream.Send(cur); err != nil {
				return err
			}
			last = cur
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

func (c *controller) Listen(req *jumpstarterv1.ListenRequest, stream jumpstarterv1.ControllerService_ListenServer) error {
	d := c.d
	ctx := stream.Context()
	d.mu.Lock()
	x, err := d.exporterOf(ctx)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	l, ok := d.leases[req.LeaseName]
	if !ok || l.Ended || l.Exporter != x.Name {
		d.mu.Unlock()
		return status.Error(codes.Unknown, "permission denied") // upstream: a plain error
	}
	q := &listenQueue{ch: make(chan *jumpstarterv1.ListenResponse, 8), done: make(chan struct{})}
	if old := d.listeners[req.LeaseName]; old != nil {
		old.close()
	}
	d.listeners[req.LeaseName] = q
	d.notify()
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.listeners[req.LeaseName] == q {
			delete(d.listeners, req.LeaseName)
		}
		d.mu.Unlock()
		q.close()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.done:
			for { // superseded: deliver what is queued, then go
				select {
				case msg := <-q.ch:
					if err := stream.Send(msg); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case msg := <-q.ch:
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
	}
}

// Dial gives a client holding a lease a router address and token, and
// announces the same to the exporter's Listen.
func (c *controller) Dial(ctx context.Context, req *jumpstarterv1.DialRequest) (*jumpstarterv1.DialResponse, error) {
	d := c.d
	d.mu.Lock()
	client, err := d.clientOf(ctx)
	var holder string
	if l, ok := d.leases[req.LeaseName]; ok {
		holder = l.Client
	}
	d.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case holder != client:
		return nil, status.Error(codes.Unknown, "permission denied") // upstream: a plain error
	}
	return d.dial(ctx, req.LeaseName)
}

// Listening reports whether the exporter holding lease listens on it.
func (d *Double) Listening(lease string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.listeners[lease] != nil
}

// dial is Dial's logic for a client holding lease: the exporter's status
// must allow driver calls (AVAILABLE is waited out for DialWait), then a
// router token goes to the exporter's Listen and to the caller.
func (d *Double) dial(ctx context.Context, lease string) (*jumpstarterv1.DialResponse, error) {
	deadline := time.Now().Add(d.opts.DialWait)
	delay := 500 * time.Millisecond
	for {
		d.mu.Lock()
		l, ok := d.leases[lease]
		if !ok || l.Ended {
			d.mu.Unlock()
			return nil, status.Error(codes.Unknown, "lease not active")
		}
		st := d.exporters[l.Exporter].Status
		d.mu.Unlock()
		var err error
		switch st {
		case jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY,
			jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK,
			jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AFTER_LEASE_HOOK,
			jumpstarterv1.ExporterStatus_EXPORTER_STATUS_UNSPECIFIED:
		case jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE:
			err = status.Error(codes.FailedPrecondition, "exporter is not ready (status: Available)")
		default:
			return nil, status.Errorf(codes.FailedPrecondition, "exporter not ready (status: %s)", st)
		}
		if err == nil {
			break
		}
		if time.Now().Add(delay).After(deadline) {
			return nil, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay = min(2*delay, 3*time.Second)
	}
	token := randomToken()
	resp := &jumpstarterv1.ListenResponse{RouterEndpoint: d.router.addr, RouterToken: token}
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.listeners[lease]
	if q == nil {
		return nil, status.Errorf(codes.Unavailable, "exporter is not listening on lease %s", lease)
	}
	select {
	case q.ch <- resp:
	default:
		return nil, status.Errorf(codes.ResourceExhausted, "listener buffer full on lease %s", lease)
	}
	d.router.allow(token)
	return &jumpstarterv1.DialResponse{RouterEndpoint: resp.RouterEndpoint, RouterToken: token}, nil
}
