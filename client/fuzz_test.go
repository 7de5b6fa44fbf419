package client_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

// FuzzNewTree feeds arbitrary reports (an exporter is not trusted to be well-formed): NewTree
// either fails or returns a tree whose walk reaches every report once, with consistent paths.
func FuzzNewTree(f *testing.F) {
	seed, err := proto.Marshal(fakeexporter.Lab().BuildReport())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp jumpstarterv1.GetReportResponse
		if proto.Unmarshal(data, &resp) != nil {
			return
		}
		tree, err := client.NewTree(&resp)
		if err != nil {
			return
		}
		seen := 0
		tree.Walk(func(d *client.Driver, depth int) {
			seen++
			if (d.Parent == nil) != (depth == 0) {
				t.Fatalf("driver %s at depth %d has parent %v", d.UUID, depth, d.Parent)
			}
			if d.Parent != nil && d.Path != strings.TrimPrefix(d.Parent.Path+"."+d.Name, ".") {
				t.Fatalf("driver %s: path %q, parent path %q, name %q", d.UUID, d.Path, d.Parent.Path, d.Name)
			}
			_ = d.MethodKind("x")
			_ = d.MethodNames()
			_ = d.HasMethod("x")
			_ = d.Type()
		})
		if seen != len(resp.GetReports()) {
			t.Fatalf("walk saw %d drivers of %d", seen, len(resp.GetReports()))
		}
		_, _ = tree.Lookup(string(data))
		_, _ = tree.Resolve(strings.Fields(string(data)))
	})
}

func TestMalformedMethodsLabel(t *testing.T) {
	tree, err := client.NewTree(&jumpstarterv1.GetReportResponse{Reports: []*jumpstarterv1.DriverInstanceReport{{
		Uuid:               "root",
		Labels:             map[string]string{client.LabelMethods: "not json"},
		MethodsDescription: map[string]string{"on": "Power on"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	d := tree.Root
	if d.MethodKind("on") != client.KindUnary || !d.HasMethod("anything") {
		t.Errorf("a malformed %s label must count as absent", client.LabelMethods)
	}
}
