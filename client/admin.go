package client

import (
	"context"

	adminv1 "github.com/jumpwire-dev/jumpwire/proto/admin/v1"
)

// Reload asks the exporter to read its config file and plugin binaries again
// and replace only what changed. It is served on the exporter's local unix
// socket only.
func (c *Client) Reload(ctx context.Context) (*adminv1.ReloadResponse, error) {
	resp, err := adminv1.NewAdminClient(c.conn).Reload(ctx, &adminv1.ReloadRequest{})
	if err != nil {
		return nil, c.wrap(ctx, "reload", err)
	}
	return resp, nil
}
