package client_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/jumpwire-dev/jumpwire/client"
	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

func labTree(t *testing.T) *client.Tree {
	t.Helper()
	tree, err := client.NewTree(fakeexporter.Lab().BuildReport())
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestTreeFromClient(t *testing.T) {
	c := dial(t, fakeexporter.Lab())
	tree, err := c.Tree(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tree.UUID != "uuid-exporter" || tree.Name != "lab-1" || tree.Motd != "be nice" {
		t.Errorf("tree header: uuid %q name %q motd %q", tree.UUID, tree.Name, tree.Motd)
	}
	if tree.Labels["jumpstarter.dev/name"] != "lab-1" {
		t.Errorf("labels %v", tree.Labels)
	}
}

func TestTreeShape(t *testing.T) {
	tree := labTree(t)
	var got []string
	tree.Walk(func(d *client.Driver, depth int) {
		parent := "-"
		if d.Parent != nil {
			parent = d.Parent.UUID
		}
		got = append(got, fmt.Sprintf("%d %q %q %s parent=%s", depth, d.Name, d.Path, d.UUID, parent))
	})
	want := []string{
		`0 "" "" uuid-root parent=-`,
		`1 "power" "power" uuid-power parent=uuid-root`,
		`1 "serial" "serial" uuid-serial parent=uuid-root`,
		`1 "dut" "dut" uuid-dut parent=uuid-root`,
		`2 "power" "dut.power" uuid-dut.power parent=uuid-dut`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("walk:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tree.Root.Description != "Demo exporter" {
		t.Errorf("root description %q", tree.Root.Description)
	}
}

func TestDriverLabels(t *testing.T) {
	tree := labTree(t)
	power, _ := tree.Lookup("power")
	serial, _ := tree.Lookup("serial")

	if got := power.ClientClass(); got != "jumpstarter_driver_power.client.PowerClient" {
		t.Errorf("ClientClass %q", got)
	}
	if got := power.Type(); got != "power" {
		t.Errorf("Type %q", got)
	}
	if got := power.State(); got != "running" {
		t.Errorf("State %q", got)
	}
	for _, tt := range []struct {
		d            *client.Driver
		method, kind string
	}{
		{power, "on", client.KindUnary},
		{power, "read", client.KindStreaming},
		{serial, "connect", client.KindStream},
		{power, "no-such-method", client.KindUnary},
	} {
		if got := tt.d.MethodKind(tt.method); got != tt.kind {
			t.Errorf("%s.MethodKind(%q) = %q, want %q", tt.d.Path, tt.method, got, tt.kind)
		}
	}
	if got := power.MethodNames(); !slices.Equal(got, []string{"off", "on", "read"}) {
		t.Errorf("MethodNames %v", got)
	}
	if power.Methods["on"] != "Power on the device" {
		t.Errorf("Methods %v", power.Methods)
	}
	if !power.HasMethod("read") || power.HasMethod("reed") {
		t.Errorf("HasMethod: read %v, reed %v", power.HasMethod("read"), power.HasMethod("reed"))
	}
}

// A plain Jumpstarter exporter sends no jumpwire.dev labels.
func TestDriverWithoutJumpwireLabels(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Root.Children[0].Plain = true
	fake.Root.Children[0].Methods = append(fake.Root.Children[0].Methods, fakeexporter.Method{Name: "secret"})
	tree, err := client.NewTree(fake.BuildReport())
	if err != nil {
		t.Fatal(err)
	}
	power, _ := tree.Lookup("power")
	if got := power.Type(); got != "PowerClient" {
		t.Errorf("Type %q, want the client class's last element", got)
	}
	if got := power.State(); got != "" {
		t.Errorf("State %q, want empty", got)
	}
	if got := power.MethodKind("read"); got != client.KindUnary {
		t.Errorf("MethodKind(read) %q, want unary when unknown", got)
	}
	if got := power.MethodNames(); !slices.Equal(got, []string{"off", "on", "read"}) {
		t.Errorf("MethodNames %v (only described methods are known)", got)
	}
	if !power.HasMethod("secret") {
		t.Error("HasMethod(secret) is false; without a complete list the exporter decides")
	}
}

func TestNewTreeErrors(t *testing.T) {
	report := func(uuid string, parent *string) *jumpstarterv1.DriverInstanceReport {
		return &jumpstarterv1.DriverInstanceReport{Uuid: uuid, ParentUuid: parent,
			Labels: map[string]string{"jumpstarter.dev/name": uuid}}
	}
	tests := []struct {
		name    string
		reports []*jumpstarterv1.DriverInstanceReport
		want    string
	}{
		{"empty", nil, "exporter report: no root driver (every report has a parent)"},
		{"two roots", []*jumpstarterv1.DriverInstanceReport{report("a", nil), report("b", nil)},
			"exporter report: two roots (a and b)"},
		{"unknown parent", []*jumpstarterv1.DriverInstanceReport{report("a", nil), report("b", proto.String("zz"))},
			"exporter report: driver b names unknown parent zz"},
		{"duplicate", []*jumpstarterv1.DriverInstanceReport{report("a", nil), report("a", proto.String("a"))},
			"exporter report: driver uuid a appears twice"},
		{"cycle", []*jumpstarterv1.DriverInstanceReport{report("a", nil), report("b", proto.String("c")), report("c", proto.String("b"))},
			"exporter report: 2 of 3 drivers are not reachable from the root (parent cycle)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.NewTree(&jumpstarterv1.GetReportResponse{Reports: tt.reports})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewTreeOutOfOrderAndUnnamed(t *testing.T) {
	resp := &jumpstarterv1.GetReportResponse{Reports: []*jumpstarterv1.DriverInstanceReport{
		{Uuid: "child", ParentUuid: proto.String("root")}, // no name label, listed before its parent
		{Uuid: "root"},
	}}
	tree, err := client.NewTree(resp)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tree.Lookup("child")
	if err != nil || d.Parent != tree.Root {
		t.Fatalf("Lookup(child) = %v, %v; an unnamed driver is addressed by its uuid", d, err)
	}
	if d.Labels == nil || d.Methods == nil {
		t.Error("Labels and Methods must be non-nil maps")
	}
}

func TestLookup(t *testing.T) {
	tree := labTree(t)
	tests := []struct {
		path, want, err string
	}{
		{"", "", ""},
		{".", "", ""},
		{"power", "power", ""},
		{"dut.power", "dut.power", ""},
		{"x", "", `no such driver "x"; drivers: power, serial, dut`},
		{"dut.x", "", `no such driver "x" in dut; drivers: power`},
		{"power.x", "", `no such driver "x" in power; it has no children`},
		{"dut..power", "", `no such driver "" in dut; drivers: power`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			d, err := tree.Lookup(tt.path)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if !errors.Is(err, client.ErrNoDriver) {
					t.Error("error is not ErrNoDriver")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Path != tt.want {
				t.Errorf("path %q, want %q", d.Path, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tree := labTree(t)
	tests := []struct {
		words    string
		path     string
		leftover string
	}{
		{"", "", ""},
		{"power on", "power", "on"},
		{"dut power read", "dut.power", "read"},
		{"dut.power read", "dut.power", "read"},
		{"dut.power", "dut.power", ""},
		{"dut power", "dut.power", ""},
		{"serial set_dtr true", "serial", "set_dtr true"},
		{"x on", "", "x on"},
		{"dut.x on", "", "dut.x on"},
		{"dut x", "dut", "x"},
		{"power power", "power", "power"},
	}
	for _, tt := range tests {
		t.Run(tt.words, func(t *testing.T) {
			d, rest := tree.Resolve(strings.Fields(tt.words))
			if d.Path != tt.path || strings.Join(rest, " ") != tt.leftover {
				t.Errorf("Resolve = %q, %q; want %q, %q", d.Path, rest, tt.path, tt.leftover)
			}
		})
	}
}
