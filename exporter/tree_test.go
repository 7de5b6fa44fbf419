package exporter

import (
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestSignaturesLabel(t *testing.T) {
	methods := []*pluginv1.Method{
		{Name: "on", Kind: pluginv1.MethodKind_METHOD_KIND_UNARY, Params: []string{"integer", "boolean"}, Result: "null",
			ParamInfo: []*pluginv1.Param{{Name: "channel", Type: "integer"}, {Name: "state", Type: "boolean", Default: structpb.NewBoolValue(true)}}},
		{Name: "read", Kind: pluginv1.MethodKind_METHOD_KIND_STREAMING, Result: "object"},
		{Name: "exec", Kind: pluginv1.MethodKind_METHOD_KIND_UNARY, Params: []string{"string", "string"}, Variadic: true, Result: "string"},
		{Name: "connect", Kind: pluginv1.MethodKind_METHOD_KIND_BYTE_STREAM, Result: "bytes"},
	}
	want := `{"exec":{"params":[{"type":"string"},{"type":"string"}],"variadic":true,"result":"string"},` +
		`"on":{"params":[{"name":"channel","type":"integer"},{"name":"state","type":"boolean","default":true}],"result":"null"},` +
		`"read":{"params":[],"result":"object"}}`
	if got := signatures(methods); got != want {
		t.Errorf("signatures label\n got %s\nwant %s", got, want)
	}
}
