package exporter

import (
	"context"
	"net"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// clientLimits holds each client to a share of a session's calls and
// streams, so that one client holding all it may cannot starve another. A
// client is an IP address on TCP and a connection otherwise (on a unix
// socket every client is the same user).
type clientLimits struct {
	maxCalls, maxStreams int // 0: none but the session's

	mu       sync.Mutex
	inflight map[any]*clientCount
}

type clientCount struct{ calls, streams int }

// share is a client's limit out of a session's: three quarters, so that a
// quarter is always left for the others.
func share(sessionLimit int) int { return max(sessionLimit-sessionLimit/4, 1) }

// newClientLimits holds each client to perClient of the session's
// limits; a client limit that is not below the session's is left to the
// session (whose refusal says so).
func newClientLimits(perClient, session [2]int) *clientLimits {
	l := &clientLimits{inflight: map[any]*clientCount{}}
	if perClient[0] < session[0] {
		l.maxCalls = perClient[0]
	}
	if perClient[1] < session[1] {
		l.maxStreams = perClient[1]
	}
	return l
}

// begin counts a call (stream: a byte stream) of the client of ctx, or
// refuses it with RESOURCE_EXHAUSTED when the client has its share in
// flight. done must be called when the call ends.
func (l *clientLimits) begin(ctx context.Context, stream bool) (done func(), err error) {
	key := ctx.Value(clientKey{})
	if key == nil {
		return func() {}, nil // not through a server of ours
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.inflight[key]
	if c == nil {
		c = &clientCount{}
		l.inflight[key] = c
	}
	n, limit, what := &c.calls, l.maxCalls, "calls"
	if stream {
		n, limit, what = &c.streams, l.maxStreams, "byte streams"
	}
	if limit > 0 && *n >= limit {
		return nil, status.Errorf(codes.ResourceExhausted,
			"this client already has %d %s in flight, its share of the session's; wait for some to finish", limit, what)
	}
	*n++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			*n--
			if c.calls == 0 && c.streams == 0 {
				delete(l.inflight, key)
			}
		})
	}, nil
}

// clientKey is the context key of the client a call comes from.
type clientKey struct{}

// clientTagger is a gRPC stats handler that tags each connection's calls
// with their client: the IP address of a TCP peer, else the connection.
type clientTagger struct{}

func (clientTagger) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	var key any = new(byte) // a connection of its own
	if a, ok := info.RemoteAddr.(*net.TCPAddr); ok {
		key = a.IP.String()
	}
	return context.WithValue(ctx, clientKey{}, key)
}

func (clientTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (clientTagger) HandleRPC(context.Context, stats.RPCStats)                       {}
func (clientTagger) HandleConn(context.Context, stats.ConnStats)                     {}
