// Command jumpwire-bench-abuser attacks an exporter served over TCP with TLS
// and a passphrase, for BenchmarkUnderAbuse, from a process of its own so
// that its work does not slow the client being measured: it holds idle TLS
// connections (from many loopback addresses, reopening those the exporter
// closes) and keeps unauthenticated DriverCalls of a given size in flight.
// Every second it prints "held N refused M"; it stops on SIGTERM.
//
// Usage: jumpwire-bench-abuser ADDR CONNS CALLS SIZE
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: jumpwire-bench-abuser ADDR CONNS CALLS SIZE")
		os.Exit(2)
	}
	addr := os.Args[1]
	conns, _ := strconv.Atoi(os.Args[2])
	calls, _ := strconv.Atoi(os.Args[3])
	size, _ := strconv.Atoi(os.Args[4])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var held, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		ip := fmt.Sprintf("127.0.1.%d", 1+i%250)
		wg.Go(func() {
			for ctx.Err() == nil {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
				raw, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // an attacker
				if c.HandshakeContext(ctx) == nil {
					held.Add(1)
					done := context.AfterFunc(ctx, func() { c.Close() })
					_, _ = io.Copy(io.Discard, c) // until the exporter closes it
					done()
					held.Add(-1)
				}
				c.Close()
			}
		})
	}
	// One encoding of the large request, sent again and again.
	body, err := proto.Marshal(&jumpstarterv1.DriverCallRequest{Uuid: "x", Method: "on",
		Args: []*structpb.Value{structpb.NewStringValue(strings.Repeat("x", size))}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := range calls {
		ip := fmt.Sprintf("127.0.2.%d", 1+i)
		cc, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})), //nolint:gosec
			grpc.WithPerRPCCredentials(wrongPassphrase{}),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(raw{}), grpc.MaxCallSendMsgSize(size+1<<20)),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
				return d.DialContext(ctx, "tcp", a)
			}))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer cc.Close()
		wg.Go(func() {
			for ctx.Err() == nil {
				var out []byte
				if err := cc.Invoke(ctx, jumpstarterv1.ExporterService_DriverCall_FullMethodName, &body, &out); err != nil && ctx.Err() == nil {
					refused.Add(1)
				}
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			fmt.Printf("held %d refused %d\n", held.Load(), refused.Load())
			return
		case <-tick.C:
			fmt.Printf("held %d refused %d\n", held.Load(), refused.Load())
		}
	}
}

type wrongPassphrase struct{}

func (wrongPassphrase) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"x-jumpstarter-passphrase": "wrong"}, nil
}
func (wrongPassphrase) RequireTransportSecurity() bool { return true }

// raw sends []byte as they are.
type raw struct{}

func (raw) Name() string { return "proto" }
func (raw) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (raw) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
