package main

import (
	"encoding/json"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
)

func TestTree(t *testing.T) {
	sock := fakeexporter.Lab().Start(t)
	jw(t, sock, "tree").check(t, `lab-1: Demo exporter
├── power (power): Bench supply
│     off               Power off the device
│     on                Power on the device
│     read (streaming)  Stream power readings
├── serial (serial): USB serial console
│     connect (stream)  Raw byte stream
│     set_dtr           Set DTR
└── dut (composite)
    └── power (power): DUT power
          off               Power off the device
          on                Power on the device
          read (streaming)  Stream power readings
`, "", 0)
}

func TestTreeVariants(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Name = ""
	fake.Root.Description = ""
	fake.Root.Methods = []fakeexporter.Method{{Name: "info", Description: "Describe the exporter\n\nMore text."}}
	power := fake.Root.Children[0]
	power.Plain = true // a plain Jumpstarter driver: no type, kinds or state labels
	serial := fake.Root.Children[1]
	serial.State = "restarting"
	serial.Methods = append(serial.Methods, fakeexporter.Method{Name: "undocumented"})
	dut := fake.Root.Children[2]
	dut.Methods = []fakeexporter.Method{{Name: "reset", Description: "Reset the board"}}
	dut.Children[0].State = "failed"
	sock := fake.Start(t)

	jw(t, sock, "tree").check(t, `exporter
│ info  Describe the exporter
├── power (PowerClient): Bench supply
│     off   Power off the device
│     on    Power on the device
│     read  Stream power readings
├── serial (serial): USB serial console [restarting]
│     connect (stream)  Raw byte stream
│     set_dtr           Set DTR
│     undocumented
└── dut (composite)
    │ reset  Reset the board
    └── power (power): DUT power [failed]
          off               Power off the device
          on                Power on the device
          read (streaming)  Stream power readings
`, "", 0)
}

func TestTreeJSON(t *testing.T) {
	sock := fakeexporter.Lab().Start(t)
	r := jw(t, sock, "tree", "-o", "json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var doc struct {
		UUID, Name, Motd string
		Labels           map[string]string
		Root             struct {
			UUID, Name, Path, Type, Description string
			Children                            []struct {
				Name, Path, Type, Client, Description, State string
				Methods                                      []struct{ Name, Kind, Description string }
				Children                                     []struct{ Path string }
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, r.stdout)
	}
	if doc.Name != "lab-1" || doc.Motd != "be nice" || doc.UUID != "uuid-exporter" || doc.Labels["jumpstarter.dev/name"] != "lab-1" {
		t.Errorf("exporter fields: %+v", doc)
	}
	if doc.Root.UUID != "uuid-root" || doc.Root.Path != "" || doc.Root.Type != "composite" || doc.Root.Description != "Demo exporter" {
		t.Errorf("root: %+v", doc.Root)
	}
	if len(doc.Root.Children) != 3 {
		t.Fatalf("root children: %+v", doc.Root.Children)
	}
	power := doc.Root.Children[0]
	if power.Name != "power" || power.Type != "power" || power.Client != "jumpstarter_driver_power.client.PowerClient" ||
		power.State != "running" || power.Description != "Bench supply" {
		t.Errorf("power: %+v", power)
	}
	if len(power.Methods) != 3 || power.Methods[2].Name != "read" || power.Methods[2].Kind != "streaming" ||
		power.Methods[2].Description != "Stream power readings" || power.Methods[0].Kind != "unary" {
		t.Errorf("power methods: %+v", power.Methods)
	}
	if dut := doc.Root.Children[2]; len(dut.Children) != 1 || dut.Children[0].Path != "dut.power" {
		t.Errorf("dut: %+v", dut)
	}
}
