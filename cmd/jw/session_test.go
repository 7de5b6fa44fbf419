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
	sock := fake.Start(t)
	jw(t, sock, "status").check(t, "LEASE_READY (version 3): Ready for commands\n", "", 0)
	jw(t, sock, "status", "-o", "json").check(t,
		`{"message":"Ready for commands","previous_status":"BEFORE_LEASE_HOOK","status":"LEASE_READY","version":3}`+"\n", "", 0)

	fake.SetStatus(&jumpstarterv1.GetStatusResponse{Status: jumpstarterv1.ExporterStatus_EXPORTER_STATUS_AVAILABLE, StatusVersion: 1})
	jw(t, sock, "status").check(t, "AVAILABLE (version 1)\n", "", 0)
}

func TestEndSession(t *testing.T) {
	fake := fakeexporter.Lab()
	sock := fake.Start(t)
	jw(t, sock, "end-session").check(t, "session ended\n", "", 0)
	jw(t, sock, "end-session", "-o", "json").check(t, `{"message":"session ended","success":true}`+"\n", "", 0)

	fake.SetEndSessionResult(&jumpstarterv1.EndSessionResponse{Success: false, Message: proto.String("no session is active")})
	jw(t, sock, "end-session").check(t, "", "jw: end session: no session is active\n", 1)
	fake.SetEndSessionResult(&jumpstarterv1.EndSessionResponse{})
	jw(t, sock, "end-session").check(t, "", "jw: end session: the exporter did not end the session\n", 1)
}
