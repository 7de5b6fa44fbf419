package host

import (
	"context"
	"iter"
	"os"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// echoRouter answers every call with the uuid and method it was routed to.
type echoRouter struct{}

func (echoRouter) Call(_ context.Context, uuid, method string, _ []*structpb.Value) (*structpb.Value, error) {
	return structpb.NewStringValue(uuid + "/" + method), nil
}

func (echoRouter) StreamingCall(context.Context, string, string, []*structpb.Value) iter.Seq2[*structpb.Value, error] {
	return func(func(*structpb.Value, error) bool) {}
}

func (echoRouter) Stream(context.Context, string, string) (pluginv1.Driver_StreamClient, func(error) error, func(), error) {
	return nil, nil, nil, status.Error(codes.Unimplemented, "no streams here")
}

func childrenClient(t *testing.T, sock string) pluginv1.ChildrenClient {
	t.Helper()
	cc, err := grpc.NewClient("unix:"+sock, append(protocol.DialOptions(protocol.Unix),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return pluginv1.NewChildrenClient(cc)
}

func TestChildrenServer(t *testing.T) {
	spec := Spec{Path: "bench", Children: []*pluginv1.Child{
		{Name: "power", Uuid: "u-power", Children: []*pluginv1.Child{{Name: "meter", Uuid: "u-meter"}}},
	}}
	callAs := func(pid int, child string) (*pluginv1.CallResponse, error) {
		cs, sock, err := serveChildren(spec, func() int { return pid }, echoRouter{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.stop()
		if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("socket directory: %v, %v", fi, err)
		}
		ctx := metadata.AppendToOutgoingContext(t.Context(), ChildHeader, child)
		return childrenClient(t, sock).Call(ctx, &pluginv1.CallRequest{Method: "on"})
	}
	if r, err := callAs(os.Getpid(), "u-meter"); err != nil || r.Result.GetStringValue() != "u-meter/on" {
		t.Errorf("the plugin's own call to a grandchild: %v, %v", r, err)
	}
	if _, err := callAs(os.Getpid(), "u-other"); status.Code(err) != codes.NotFound {
		t.Errorf("a call to an instance that is not its child: %v", err)
	}
	// Another process of the same user is refused at the handshake.
	if _, err := callAs(os.Getpid()+1, "u-power"); status.Code(err) != codes.Unavailable {
		t.Errorf("a call from another pid: %v", err)
	}
}
