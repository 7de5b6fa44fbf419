package exporter

import (
	"context"
	"errors"
	"strings"

	"github.com/jumpwire-dev/jumpwire/exporter/config"
	adminv1 "github.com/jumpwire-dev/jumpwire/proto/admin/v1"
	"google.golang.org/grpc/status"
)

// admin implements jumpwire.admin.v1 Admin: operations for the operator of
// the machine, served on unix sockets only.
type admin struct {
	adminv1.UnimplementedAdminServer
	e *Exporter
}

func (a *admin) Reload(ctx context.Context, _ *adminv1.ReloadRequest) (*adminv1.ReloadResponse, error) {
	changes, err := a.e.Reload(ctx)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			resp := &adminv1.ReloadResponse{}
			for _, e := range errs {
				resp.Problems = append(resp.Problems, e.Error())
			}
			return resp, nil
		}
		return nil, err // its own status, if it has one; UNKNOWN otherwise
	}
	return reloadResponse(changes), nil
}

func reloadResponse(changes []Change) *adminv1.ReloadResponse {
	resp := &adminv1.ReloadResponse{}
	for _, c := range changes {
		pc := &adminv1.Change{Path: c.Path, Action: c.Action, Detail: c.Detail}
		if c.Err != nil {
			pc.Error = strings.TrimPrefix(status.Convert(c.Err).Message(), "host: ")
		}
		resp.Changes = append(resp.Changes, pc)
	}
	return resp
}

func (a *admin) Controller(context.Context, *adminv1.ControllerRequest) (*adminv1.ControllerResponse, error) {
	st, ok := a.e.ControllerStatus()
	if !ok {
		return &adminv1.ControllerResponse{}, nil
	}
	resp := &adminv1.ControllerResponse{
		Enabled: true, Endpoint: st.Endpoint, Registered: st.Registered,
		LeaseName: st.LeaseName, ClientName: st.ClientName, LastError: st.LastError,
	}
	if !st.LastErrorAt.IsZero() && st.LastError != "" {
		resp.LastErrorUnixMs = st.LastErrorAt.UnixMilli()
	}
	return resp, nil
}
