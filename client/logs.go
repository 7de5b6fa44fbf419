package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"strconv"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// BacklogHeader is the LogStream response header in which a jumpwire
// exporter says how many of the first entries are history.
const BacklogHeader = "jumpwire-log-backlog"

// Fields of the "status changed" entry a jumpwire exporter writes to its log
// at every change of its lease status, so that a log follower sees each
// status_version (jw status -w).
const (
	LogStatus         = "status"          // the new status, e.g. LEASE_READY
	LogStatusVersion  = "status_version"  // its status_version
	LogPreviousStatus = "previous_status" // the status before
)

// Logs follows the exporter's log. backlog is how many of the first entries
// are history sent before live ones (-1 when the exporter does not say, as a
// plain Jumpstarter exporter does not). Breaking out of the loop ends the
// stream.
func (c *Client) Logs(ctx context.Context) (backlog int, entries iter.Seq2[*jumpstarterv1.LogStreamResponse, error], err error) {
	ctx, cancel := context.WithCancel(ctx)
	s, err := c.svc.LogStream(ctx, &emptypb.Empty{})
	if err != nil {
		cancel()
		return 0, nil, c.wrap(ctx, "log stream", err)
	}
	md, err := s.Header()
	if err != nil {
		cancel()
		return 0, nil, c.wrap(ctx, "log stream", err)
	}
	backlog = -1
	if v := md.Get(BacklogHeader); len(v) == 1 {
		if n, err := strconv.Atoi(v[0]); err == nil {
			backlog = n
		}
	}
	return backlog, func(yield func(*jumpstarterv1.LogStreamResponse, error) bool) {
		defer cancel()
		for {
			e, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, c.wrap(ctx, "log stream", err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}, nil
}
