package exporter

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// countingListener counts what the exporter's side of its connections
// sees: connections open, and bytes read.
type countingListener struct {
	net.Listener
	open, accepted, read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	l.accepted.Add(1)
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

func counting(l **countingListener) func(net.Listener) net.Listener {
	return func(lis net.Listener) net.Listener {
		*l = &countingListener{Listener: lis}
		return *l
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUnauthenticatedBodiesAreNotRead: calls with a wrong passphrase are
// refused on their headers; the exporter does not read (let alone decode)
// their large messages, so a stranger cannot make it hold memory.
func TestUnauthenticatedBodiesAreNotRead(t *testing.T) {
	var cl *countingListener
	x := serveTLSWith(t, "right", counting(&cl))
	wrong := "wrong"
	c, _ := x.conn(t, &wrong)
	const calls, size = 4, 8 << 20
	arg := structpb.NewStringValue(strings.Repeat("x", size))
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			_, errs[i] = jumpstarterv1.NewExporterServiceClient(c).DriverCall(t.Context(),
				&jumpstarterv1.DriverCallRequest{Uuid: x.power, Method: "on", Args: []*structpb.Value{arg}})
		})
	}
	wg.Wait()
	// Each call is refused: on its headers (UNAUTHENTICATED), or, for
	// calls whose refusal was not yet written when the connection had sent
	// more than the guard reads of a stranger, by the connection's close.
	refused := 0
	for i, err := range errs {
		switch status.Code(err) {
		case codes.Unauthenticated:
			refused++
		case codes.Unavailable:
		default:
			t.Errorf("call %d: %v, want UNAUTHENTICATED", i, err)
		}
	}
	if refused == 0 {
		t.Errorf("no call was refused as UNAUTHENTICATED: %v", errs)
	}
	if n := cl.read.Load(); n > calls*size/8 {
		t.Errorf("the exporter read %d bytes of %d refused calls of %d bytes each: it reads messages before the passphrase", n, calls, size)
	}
}

// TestAnonymousConnectionsAreBounded: connections that never make a call
// are held to the per-client limit (the oldest are closed to make room),
// and a real client still gets in while a stranger keeps opening them.
func TestAnonymousConnectionsAreBounded(t *testing.T) {
	var cl *countingListener
	limits := ConnLimits{MaxConns: 48, MaxConnsPerClient: 16, AnonymousTimeout: time.Minute}
	x := serveTLSWith(t, "right", counting(&cl), WithConnLimits(limits))
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range 225 {
		c, err := net.Dial("tcp", x.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		idle = append(idle, c)
	}
	eventually(t, 10*time.Second, "idle connections not closed down to the per-client limit", func() bool {
		return cl.accepted.Load() == 225 && cl.open.Load() <= int64(limits.MaxConnsPerClient)
	})
	right := "right"
	c, _ := x.conn(t, &right)
	if _, err := jumpstarterv1.NewExporterServiceClient(c).GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{}); err != nil {
		t.Fatalf("a real client among idle connections: %v", err)
	}
	// More strangers do not push the admitted client out.
	for range 64 {
		c, err := net.Dial("tcp", x.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		idle = append(idle, c)
	}
	eventually(t, 10*time.Second, "idle connections not closed down to the per-client limit", func() bool {
		return cl.accepted.Load() == 225+64+1 && cl.open.Load() <= int64(limits.MaxConnsPerClient)
	})
	if _, err := jumpstarterv1.NewExporterServiceClient(c).GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{}); err != nil {
		t.Fatalf("the admitted client after more strangers: %v", err)
	}
	if n := cl.accepted.Load(); n != 225+64+1 {
		t.Errorf("the admitted client reconnected (%d connections accepted)", n)
	}
}

// TestAnonymousTimeout: a connection that never finishes its TLS handshake
// is closed after the anonymous timeout (not grpc-go's 120s); one that made
// a call is kept.
func TestAnonymousTimeout(t *testing.T) {
	var cl *countingListener
	x := serveTLSWith(t, "right", counting(&cl), WithConnLimits(ConnLimits{AnonymousTimeout: 300 * time.Millisecond}))
	right := "right"
	c, _ := x.conn(t, &right)
	status := func() error {
		_, err := jumpstarterv1.NewExporterServiceClient(c).GetStatus(t.Context(), &jumpstarterv1.GetStatusRequest{})
		return err
	}
	if err := status(); err != nil {
		t.Fatal(err)
	}
	for name, hello := range map[string]func(net.Conn){
		"silent":         func(net.Conn) {},
		"half handshake": func(c net.Conn) { _, _ = c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x80}) }, // a TLS record header, no record
		"tls, no http2": func(c net.Conn) {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
			_ = tc.Handshake()
		},
	} {
		raw, err := net.Dial("tcp", x.addr)
		if err != nil {
			t.Fatal(err)
		}
		hello(raw)
		_ = raw.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = io.Copy(io.Discard, raw)
		raw.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the exporter kept the connection 30s", name)
		}
	}
	if err := status(); err != nil {
		t.Fatalf("the admitted client after the timeout: %v", err)
	}
	time.Sleep(time.Second) // past the timeout more than twice over
	if err := status(); err != nil {
		t.Fatalf("the admitted client after the timeout: %v", err)
	}
	if n := cl.accepted.Load(); n != 4 {
		t.Errorf("%d connections accepted; the admitted client reconnected", n)
	}
}

// TestRateLog: a burst of events is one line, then one summary with the
// count.
func TestRateLog(t *testing.T) {
	var buf syncBuffer
	r := newRateLog(hclog.New(&hclog.LoggerOptions{Output: &buf}), "refused", 200*time.Millisecond)
	for i := range 1000 {
		r.add("n", i)
	}
	if n := strings.Count(buf.String(), "refused"); n != 1 {
		t.Fatalf("%d lines for a burst, want 1:\n%s", n, buf.String())
	}
	eventually(t, 5*time.Second, "no summary", func() bool { return strings.Contains(buf.String(), "999 more") })
	if !strings.Contains(buf.String(), "n=999") {
		t.Errorf("the summary does not carry the last event's details:\n%s", buf.String())
	}
	r.stop()
	_ = context.Background
}

// TestAnonymousBytes: a connection whose calls are all refused is closed
// once it has sent AnonymousBytes, so a stranger's refused calls cannot
// make the exporter read what HTTP/2's windows let through, call after
// call; the stranger sees its calls refused (or its connection closed),
// and a real client is not affected.
func TestAnonymousBytes(t *testing.T) {
	var cl *countingListener
	const budget = 128 << 10
	x := serveTLSWith(t, "right", counting(&cl), WithConnLimits(ConnLimits{AnonymousBytes: budget}))
	wrong, right := "wrong", "right"
	c, _ := x.conn(t, &wrong)
	arg := structpb.NewStringValue(strings.Repeat("x", 8<<20))
	const calls = 20
	for i := range calls {
		_, err := jumpstarterv1.NewExporterServiceClient(c).DriverCall(t.Context(),
			&jumpstarterv1.DriverCallRequest{Uuid: x.power, Method: "on", Args: []*structpb.Value{arg}})
		if code := status.Code(err); code != codes.Unauthenticated && code != codes.Unavailable {
			t.Fatalf("refused call %d: %v", i, err)
		}
	}
	// Each connection reads at most the budget and what one read brings.
	if n, most := cl.read.Load(), cl.accepted.Load()*(budget+64<<10); n > most {
		t.Errorf("the exporter read %d bytes on %d connections of a stranger, more than %d", n, cl.accepted.Load(), most)
	}
	// A real client's large first call reaches the driver (which says the
	// method takes no argument).
	ok, _ := x.conn(t, &right)
	_, err := jumpstarterv1.NewExporterServiceClient(ok).DriverCall(t.Context(),
		&jumpstarterv1.DriverCallRequest{Uuid: x.power, Method: "on", Args: []*structpb.Value{arg}})
	if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "takes 0 arguments") {
		t.Errorf("a real client's large first call: %v, want the driver's answer", err)
	}
}
