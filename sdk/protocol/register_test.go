package protocol

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends []byte as they are, to put malformed messages on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// echoDriver answers Call and reads frames on Stream until an error.
type echoDriver struct {
	pluginv1.UnimplementedDriverServer
}

func (echoDriver) Call(context.Context, *pluginv1.CallRequest) (*pluginv1.CallResponse, error) {
	return &pluginv1.CallResponse{}, nil
}

func (echoDriver) Stream(s grpc.BidiStreamingServer[pluginv1.Frame, pluginv1.Frame]) error {
	for {
		var f Frame
		if err := s.RecvMsg(&f); err != nil {
			return err
		}
		f.Free()
	}
}

// TestMalformedRequestsAreInvalidArgument: a request that does not decode
// is the caller's fault, INVALID_ARGUMENT with what was wrong, in a unary
// call and in a stream, not INTERNAL.
func TestMalformedRequestsAreInvalidArgument(t *testing.T) {
	lis, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(ServerOptions(Unix)...)
	RegisterService(srv, &pluginv1.Driver_ServiceDesc, echoDriver{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	cc, err := grpc.NewClient("unix://"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()

	badUTF8 := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff, 0xfe})
	for name, req := range map[string][]byte{
		"truncated":    {0x0a, 5, 'a'},
		"invalid utf8": badUTF8,
	} {
		var out []byte
		err := cc.Invoke(ctx, pluginv1.Driver_Call_FullMethodName, &req, &out)
		if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "does not decode") {
			t.Errorf("call, %s request: %v; want INVALID_ARGUMENT saying it does not decode", name, err)
		}
	}
	good := []byte{}
	var out []byte
	if err := cc.Invoke(ctx, pluginv1.Driver_Call_FullMethodName, &good, &out); err != nil {
		t.Errorf("a good call: %v", err)
	}

	for name, frame := range map[string][]byte{
		"truncated":   {0x0a, 5, 'a'},
		"deep groups": nestedGroups(maxGroupDepth + 10),
	} {
		st, err := cc.NewStream(ctx, &pluginv1.Driver_ServiceDesc.Streams[1], pluginv1.Driver_Stream_FullMethodName)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SendMsg(&frame); err != nil {
			t.Fatal(err)
		}
		var back []byte
		err = st.RecvMsg(&back)
		if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "stream frame") {
			t.Errorf("stream, %s frame: %v; want INVALID_ARGUMENT about the frame", name, err)
		}
	}
}
