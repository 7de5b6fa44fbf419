package exporter

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"
)

// ConnLimits bound the connections of a TCP listener, which anyone who can
// reach the port may open. A connection is anonymous until a call on it is
// admitted (its passphrase checked, when there is one); only anonymous
// connections are closed to make room, oldest first, and each is closed
// once AnonymousTimeout passes without an admitted call, TLS handshake
// included.
type ConnLimits struct {
	// MaxConns is how many connections the listener keeps open. Default 512.
	MaxConns int
	// MaxConnsPerClient is how many connections one client address keeps
	// open. Default 64.
	MaxConnsPerClient int
	// AnonymousTimeout is how long a connection may stay without an
	// admitted call. Default 10s.
	AnonymousTimeout time.Duration
	// AnonymousBytes is how much a connection may send before a call on it
	// is admitted: a client's handshakes and first call's headers take a few
	// kilobytes, while a stranger's refused calls would otherwise have the
	// exporter read (and decrypt) what HTTP/2's windows let through, megabytes
	// a call. Default 128 KiB.
	AnonymousBytes int64
}

// Defaults of ConnLimits.
const (
	DefaultMaxConns          = 512
	DefaultMaxConnsPerClient = 64
	DefaultAnonymousTimeout  = 10 * time.Second
	DefaultAnonymousBytes    = 128 << 10
)

func (l ConnLimits) withDefaults() ConnLimits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if l.AnonymousTimeout <= 0 {
		l.AnonymousTimeout = DefaultAnonymousTimeout
	}
	if l.AnonymousBytes <= 0 {
		l.AnonymousBytes = DefaultAnonymousBytes
	}
	return l
}

// WithConnLimits sets the connection limits of a TCP listener (see
// [ConnLimits]); zero fields keep their defaults.
func WithConnLimits(l ConnLimits) ServeOption {
	return func(o *serveOptions) { o.connLimits = l }
}

// guard is a TCP listener that holds its connections to ConnLimits.
type guard struct {
	net.Listener
	limits  ConnLimits
	refused *rateLog

	mu       sync.Mutex
	conns    map[string]*guardedConn // by remote address
	order    []*guardedConn          // in the order accepted
	byClient map[string]int          // open connections per client host
}

func newGuard(lis net.Listener, l ConnLimits, logger hclog.Logger) *guard {
	return &guard{
		Listener: lis,
		limits:   l.withDefaults(),
		refused:  newRateLog(logger, "closed a connection without an admitted call (connection limits)", rateLogEvery),
		conns:    map[string]*guardedConn{},
		byClient: map[string]int{},
	}
}

// guardedConn is a connection the guard counts.
type guardedConn struct {
	net.Conn
	g        *guard
	client   string
	admitted atomic.Bool
	read     atomic.Int64 // bytes read before admission
	timer    *time.Timer
	once     sync.Once
}

// Accept returns the next connection, having closed connections to make
// room for it or closed it when there is none to make.
func (g *guard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := g.add(c); gc != nil {
			return gc, nil
		}
	}
}

// add counts c, closing the oldest anonymous connections its client or
// the listener is over its limit by; it returns nil (and closes c) when
// they hold only admitted connections.
func (g *guard) add(c net.Conn) *guardedConn {
	client := clientHost(c.RemoteAddr())
	gc := &guardedConn{Conn: c, g: g, client: client}
	var victims []*guardedConn
	g.mu.Lock()
	if g.byClient[client] >= g.limits.MaxConnsPerClient {
		victims = append(victims, g.oldestAnonymous(client, victims))
	}
	if len(g.conns)-len(victims) >= g.limits.MaxConns {
		victims = append(victims, g.oldestAnonymous("", victims))
	}
	refuse := false
	for _, v := range victims {
		refuse = refuse || v == nil
	}
	if !refuse {
		g.conns[c.RemoteAddr().String()] = gc
		g.order = append(g.order, gc)
		g.byClient[client]++
		gc.timer = time.AfterFunc(g.limits.AnonymousTimeout, func() {
			if !gc.admitted.Load() {
				g.refused.add("client", client, "reason", "no admitted call in "+g.limits.AnonymousTimeout.String())
				_ = gc.Close()
			}
		})
	}
	g.mu.Unlock()
	if refuse {
		g.refused.add("client", client, "reason", "its client or the listener holds only admitted connections")
		c.Close()
		return nil
	}
	for _, v := range victims {
		g.refused.add("client", v.client, "reason", "oldest anonymous connection, closed to make room")
		_ = v.Close()
	}
	return gc
}

// oldestAnonymous is the oldest connection not yet admitted, of client
// ("" for any), that is not in skip; nil when there is none.
func (g *guard) oldestAnonymous(client string, skip []*guardedConn) *guardedConn {
outer:
	for _, c := range g.order {
		if c.admitted.Load() || client != "" && c.client != client {
			continue
		}
		for _, s := range skip {
			if s == c {
				continue outer
			}
		}
		return c
	}
	return nil
}

// admit marks the connection from addr as carrying an admitted call.
func (g *guard) admit(addr net.Addr) {
	if addr == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.conns[addr.String()]; c != nil && !c.admitted.Swap(true) {
		c.timer.Stop()
	}
}

// refusalLinger is how long a connection that sent too much without an
// admitted call stays open, unread, before it is closed.
const refusalLinger = 100 * time.Millisecond

// Read reads from the connection, and closes it once it has sent more
// than AnonymousBytes without an admitted call.
func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.admitted.Load() && c.read.Add(int64(n)) > c.g.limits.AnonymousBytes {
		c.g.refused.add("client", c.client, "reason", fmt.Sprintf("sent more than %d bytes without an admitted call", c.g.limits.AnonymousBytes))
		// Read no more, but give the refusals already queued (a wrong
		// passphrase's UNAUTHENTICATED) a moment to be written, so the
		// client learns why rather than seeing a reset.
		time.Sleep(refusalLinger)
		_ = c.Close()
		if err == nil {
			err = net.ErrClosed
		}
	}
	return n, err
}

// Close stops counting the connection and closes it.
func (c *guardedConn) Close() error {
	c.once.Do(func() {
		g := c.g
		g.mu.Lock()
		if c.timer != nil { // set under g.mu
			c.timer.Stop()
		}
		delete(g.conns, c.RemoteAddr().String())
		for i, o := range g.order {
			if o == c {
				g.order = append(g.order[:i], g.order[i+1:]...)
				break
			}
		}
		if g.byClient[c.client]--; g.byClient[c.client] <= 0 {
			delete(g.byClient, c.client)
		}
		g.mu.Unlock()
	})
	return c.Conn.Close()
}

// clientHost is the host part of a client's address: its IP address.
func clientHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// gate is the exporter's tap: it runs on each call's headers, before the
// call exists and before any of its message is read. It checks the
// passphrase (when there is one) and marks the connection admitted.
type gate struct {
	auth  *passphraseAuth // nil: no passphrase
	guard *guard          // nil: not a guarded listener
}

func (g *gate) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	p, _ := peer.FromContext(ctx)
	if g.auth != nil {
		if err := g.auth.check(info.Header, p, info.FullMethodName); err != nil {
			return nil, err
		}
	}
	if g.guard != nil && p != nil {
		g.guard.admit(p.Addr)
	}
	return ctx, nil
}

// rateLogEvery is how often a rateLog writes its summary.
const rateLogEvery = 10 * time.Second

// rateLog logs an event that a peer can repeat at will without letting
// the peer fill the log: the first one as it happens, then at most one
// line per period with how many there were and the last one's details.
type rateLog struct {
	logger hclog.Logger
	msg    string
	every  time.Duration

	mu      sync.Mutex
	last    time.Time // the last line written
	count   int       // events since then
	details []any     // the last event's
	timer   *time.Timer
}

func newRateLog(logger hclog.Logger, msg string, every time.Duration) *rateLog {
	return &rateLog{logger: logger, msg: msg, every: every}
}

// add records one event with its details (hclog key-value pairs).
func (r *rateLog) add(details ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.count == 0 && now.Sub(r.last) >= r.every {
		r.last = now
		r.logger.Warn(r.msg, details...)
		return
	}
	r.count++
	r.details = details
	if r.timer == nil {
		r.timer = time.AfterFunc(r.every-now.Sub(r.last), r.flush)
	}
}

// flush writes the summary of the events since the last line.
func (r *rateLog) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.count == 0 {
		return
	}
	r.logger.Warn(fmt.Sprintf("%s: %d more in the last %s", r.msg, r.count, r.every.Round(time.Second)),
		append([]any{"count", r.count}, r.details...)...)
	r.count, r.details, r.last = 0, nil, time.Now()
}

// stop writes what is pending and stops the timer.
func (r *rateLog) stop() {
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.flush()
}
