package client

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/jumpwire-dev/jumpwire/proto/admin/v1"
)

// ErrAdminLocalOnly means an admin request (Reload) went to an exporter over TCP: the exporter
// serves its admin service on its local unix socket only, where the socket's file mode decides
// who may use it.
var ErrAdminLocalOnly = errors.New("reload is only available on the exporter's local unix socket " +
	"(run jw reload on the exporter's machine with --host unix:///PATH, or send jw run SIGHUP)")

// Reload asks the exporter to read its config file and plugin binaries again
// and replace only what changed. It is served on the exporter's local unix
// socket only.
func (c *Client) Reload(ctx context.Context) (*adminv1.ReloadResponse, error) {
	resp, err := adminv1.NewAdminClient(c.conn).Reload(ctx, &adminv1.ReloadRequest{})
	if status.Code(err) == codes.Unimplemented && c.tcp {
		return nil, ErrAdminLocalOnly
	}
	if err != nil {
		return nil, c.wrap(ctx, "reload", err)
	}
	return resp, nil
}

// Controller describes the exporter's link to a Jumpstarter controller
// (Enabled is false outside controller mode). It is served on the
// exporter's local unix socket only.
func (c *Client) Controller(ctx context.Context) (*adminv1.ControllerResponse, error) {
	resp, err := adminv1.NewAdminClient(c.conn).Controller(ctx, &adminv1.ControllerRequest{})
	if err != nil {
		return nil, c.wrap(ctx, "controller status", err)
	}
	return resp, nil
}
