package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeCalls is a plugin's side of a call socket, served by the test: it
// hands each frame it reads to the test and writes what the test sends.
type fakeCalls struct {
	path string
	in   chan *pluginv1.CallFrame
	conn chan net.Conn
}

func serveFakeCalls(t *testing.T) *fakeCalls {
	t.Helper()
	path := filepath.Join(t.TempDir(), "calls.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	f := &fakeCalls{path: path, in: make(chan *pluginv1.CallFrame, 16), conn: make(chan net.Conn, 1)}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { _ = c.Close() })
		f.conn <- c
		var buf []byte
		for {
			var fr *pluginv1.CallFrame
			if fr, buf, err = protocol.ReadCallFrame(c, buf); err != nil {
				close(f.in)
				return
			}
			f.in <- fr
		}
	}()
	return f
}

func (f *fakeCalls) next(t *testing.T) *pluginv1.CallFrame {
	t.Helper()
	select {
	case fr, ok := <-f.in:
		if !ok {
			t.Fatal("the host closed the call socket")
		}
		return fr
	case <-time.After(10 * time.Second):
		t.Fatal("no frame from the host within 10s")
	}
	return nil
}

func (f *fakeCalls) answer(t *testing.T, c net.Conn, fr *pluginv1.CallFrame) {
	t.Helper()
	b, err := protocol.AppendCallFrame(nil, fr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func dialFake(t *testing.T, f *fakeCalls) (*callSocket, net.Conn) {
	t.Helper()
	c, err := dialCallSocket(f.path, os.Getpid()) // the fake plugin is this process
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c, <-f.conn
}

type answer struct {
	resp      *pluginv1.CallResponse
	driverErr bool
	err       error
}

func goCall(ctx context.Context, c *callSocket, instance, method string) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		resp, driverErr, err := c.call(ctx, instance, &pluginv1.CallRequest{Method: method})
		out <- answer{resp, driverErr, err}
	}()
	return out
}

func TestCallSocketAnswersInAnyOrder(t *testing.T) {
	f := serveFakeCalls(t)
	c, conn := dialFake(t, f)
	first := goCall(t.Context(), c, "", "first")
	a := f.next(t)
	second := goCall(t.Context(), c, "power", "second")
	b := f.next(t)
	if a.GetRequest().GetMethod() != "first" || b.GetRequest().GetMethod() != "second" || b.GetInstance() != "power" || a.GetId() == b.GetId() {
		t.Fatalf("frames: %v, %v", a, b)
	}
	f.answer(t, conn, &pluginv1.CallFrame{Id: b.GetId(), Response: &pluginv1.CallResponse{Result: structpb.NewStringValue("two")}})
	f.answer(t, conn, &pluginv1.CallFrame{Id: a.GetId(), Code: uint32(codes.InvalidArgument), Message: "bad value"})
	if got := <-second; got.err != nil || got.resp.GetResult().GetStringValue() != "two" {
		t.Fatalf("second: %+v", got)
	}
	got := <-first
	if !got.driverErr || status.Code(got.err) != codes.InvalidArgument || status.Convert(got.err).Message() != "bad value" {
		t.Fatalf("first: %+v", got)
	}
}

func TestCallSocketCancelsWhatTheCallerGaveUp(t *testing.T) {
	f := serveFakeCalls(t)
	c, conn := dialFake(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	given := goCall(ctx, c, "", "nap")
	req := f.next(t)
	cancel()
	if got := <-given; status.Code(got.err) != codes.Canceled || got.driverErr {
		t.Fatalf("cancelled call: %+v", got)
	}
	if fr := f.next(t); !fr.GetCancel() || fr.GetId() != req.GetId() {
		t.Fatalf("the plugin was told %v, want the cancel of call %d", fr, req.GetId())
	}
	// An answer that comes anyway is dropped; the next call gets its own.
	f.answer(t, conn, &pluginv1.CallFrame{Id: req.GetId(), Response: &pluginv1.CallResponse{Result: structpb.NewStringValue("late")}})
	next := goCall(t.Context(), c, "", "on")
	fr := f.next(t)
	f.answer(t, conn, &pluginv1.CallFrame{Id: fr.GetId(), Response: &pluginv1.CallResponse{Result: structpb.NewNullValue()}})
	if got := <-next; got.err != nil || got.resp.GetResult().GetNullValue() != structpb.NullValue_NULL_VALUE {
		t.Fatalf("next call: %+v", got)
	}
}

func TestCallSocketLostFailsEveryCall(t *testing.T) {
	f := serveFakeCalls(t)
	c, conn := dialFake(t, f)
	waiting := goCall(t.Context(), c, "", "on")
	f.next(t)
	_ = conn.Close()
	got := <-waiting
	if status.Code(got.err) != codes.Unavailable || got.driverErr {
		t.Fatalf("call under a closed socket: %+v", got)
	}
	if _, _, err := c.call(t.Context(), "", &pluginv1.CallRequest{Method: "on"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after: %v", err)
	}
}

func TestCallSocketGarbageEndsTheConnection(t *testing.T) {
	f := serveFakeCalls(t)
	c, conn := dialFake(t, f)
	waiting := goCall(t.Context(), c, "", "on")
	f.next(t)
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], protocol.MaxMessageSize+1)
	if _, err := conn.Write(head[:]); err != nil {
		t.Fatal(err)
	}
	got := <-waiting
	if status.Code(got.err) != codes.Unavailable || !strings.Contains(got.err.Error(), "more than the largest message") {
		t.Fatalf("call: %+v", got)
	}
}

func TestCallSocketOnlyThePluginItStarted(t *testing.T) {
	f := serveFakeCalls(t)
	_, err := dialCallSocket(f.path, os.Getpid()+1)
	if !errors.Is(err, protocol.ErrPeerRefused) || !strings.Contains(err.Error(), "not the plugin this exporter started") {
		t.Fatalf("dial: %v", err)
	}
}

// A Python instance, forked by its zygote or started on its own, names its
// call socket, and unary calls take it: results, the driver's errors, and a
// process killed under a call, as on gRPC.
func TestPythonCallsTakeTheCallSocket(t *testing.T) {
	py := testbin.Python(t)
	for _, zygote := range []bool{true, false} {
		t.Run(fmt.Sprintf("zygote=%v", zygote), func(t *testing.T) {
			const kinds = "testdrivers.Kinds" // python/tests/testdrivers.py
			env := []string{
				"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
				"PYTHONPATH=" + filepath.Join(testbin.Root(t), "python", "tests"),
			}
			o := LaunchOptions{}
			if zygote {
				o.Zygotes = NewZygotes(env)
				defer o.Zygotes.Close()
			}
			spec := Spec{
				Binary: py, Args: []string{"-m", "jumpwire_pyhost", "serve", kinds}, Env: env,
				Python: kinds, PythonCode: "test", Type: kinds, Name: "kinds", Path: "kinds",
			}
			inst, err := Start(t.Context(), spec, o)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = inst.Stop(context.Background()) }()
			if inst.proc.calls == nil || !inst.proc.calls.usable() {
				t.Fatalf("no call socket (Describe named %q)", inst.Info().GetCallSocket())
			}
			got, err := inst.Call(t.Context(), "async_add", []*structpb.Value{structpb.NewNumberValue(2), structpb.NewNumberValue(3)})
			if err != nil || got.GetNumberValue() != 5 {
				t.Fatalf("async_add(2, 3) = %v, %v", got, err)
			}
			_, err = inst.Call(t.Context(), "raise_value", nil)
			if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "bad value" {
				t.Fatalf("a driver's error: %v", err)
			}
			// Killed with a call in flight: the call says how the driver ended.
			inFlight := make(chan error, 1)
			go func() {
				_, err := inst.Call(t.Context(), "nap", []*structpb.Value{structpb.NewNumberValue(60)})
				inFlight <- err
			}()
			time.Sleep(50 * time.Millisecond)
			if err := syscall.Kill(inst.Pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err = <-inFlight
			if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "was killed by SIGKILL") {
				t.Fatalf("a call when the process was killed: %v", err)
			}
		})
	}
}
