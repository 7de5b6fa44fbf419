package bareplugin

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
)

// rawCodec passes messages through as the bytes they arrived as: the relay
// neither decodes nor re-encodes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// ServeRelay is the floor of a two-hop call: a process that serves plain
// gRPC on the unix socket listen and forwards every unary call, as raw
// bytes under the same method name, to the bare plugin binary backend,
// which it launches as its own child (as an exporter launches a plugin).
// It serves until SIGTERM or SIGINT.
func ServeRelay(listen, backend string) error {
	p, err := Launch(backend)
	if err != nil {
		return fmt.Errorf("relay: launch %s: %w", backend, err)
	}
	defer p.Kill()
	lis, err := net.Listen("unix", listen)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(ss)
		var in, out []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		if err := p.Conn.Invoke(ss.Context(), method, &in, &out, grpc.ForceCodec(rawCodec{})); err != nil {
			return err
		}
		return ss.SendMsg(&out)
	}))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; srv.Stop() }()
	fmt.Println("serving on", listen)
	return srv.Serve(lis)
}
