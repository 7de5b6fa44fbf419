package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/jumpwire-dev/jumpwire/internal/fakeexporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

func TestStatus(t *testing.T) {
	fake := fakeexporter.Lab()
	fake.Status = &jumpstarterv1.GetStatusResponse{
		Status:         jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY,
		StatusVersion:  3,
		Message:        proto.String("Ready for commands"),
		PreviousStatus: jumpstarterv1.ExporterStatus_EXPORTER_STATUS_BEFORE_LEASE_HOOK.Enum(),
	}
	// Health as a jumpwire exporter reports it: power runs, dut.power restarts after a crash.
	fake.Report = fake.BuildReport()
	for _, r := range fake.Report.Reports {
		switch r.Uuid {
		case fakeexporter.UUID("power"):
			r.Labels["jumpwire.dev/restarts"], r.Labels["jumpwire.dev/pid"] = "0", "7815"
		case fakeexporter.UUID("dut.power"):
			r.Labels["jumpwire.dev/state"], r.Labels["jumpwire.dev/restarts"] = "restarting", "2"
			r.Labels["jumpwire.dev/last-exit"] = "signal: killed"
		}
	}
	sock := fake.Start(t)
	jw(t, sock, "status").check(t, "LEASE_READY (version 3): Ready for commands\n"+
		"  power                running    restarts 0  pid 7815\n"+
		"  dut.power            restarting restarts 2  last exit: signal: killed\n", "", 0)
	jw(t, sock, "status", "-o", "json").check(t,
		`{"status":"LEASE_READY","version":3,"message":"Ready for commands","previous_status":"BEFORE_LEASE_HOOK","drivers":[`+
			`{"path":"power","state":"running","restarts":0,"pid":7815,"last_exit":""},`+
			`{"path":"dut.power","state":"restarting","restarts":2,"pid":null,"last_exit":"signal: killed"}]}`+"\n", "", 0)

	fake.SetStatus(&jumpstarterv1.GetStatusResponse{Status: jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, StatusVersion: 1})
	jw(t, sock, "status", "-o", "json").check(t,
		`{"status":"AVAILABLE","version":1,"message":"","previous_status":"","drivers":[`+
			`{"path":"power","state":"running","restarts":0,"pid":7815,"last_exit":""},`+
			`{"path":"dut.power","state":"restarting","restarts":2,"pid":null,"last_exit":"signal: killed"}]}`+"\n", "", 0)
}

func TestEndSession(t *testing.T) {
	fake := fakeexporter.Lab()
	sock := fake.Start(t)
	jw(t, sock, "end-session").check(t, "session ended\n", "", 0)
	jw(t, sock, "end-session", "-o", "json").check(t, `{"success":true,"message":"session ended"}`+"\n", "", 0)

	fake.SetEndSessionResult(&jumpstarterv1.EndSessionResponse{Success: false, Message: proto.String("no session is active")})
	jw(t, sock, "end-session").check(t, "", "jw: end session: no session is active\n", 1)
	fake.SetEndSessionResult(&jumpstarterv1.EndSessionResponse{})
	jw(t, sock, "end-session").check(t, "", "jw: end session: the exporter did not end the session\n", 1)
}
