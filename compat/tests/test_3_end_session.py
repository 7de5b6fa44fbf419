"""EndSession, last. An exporter with a session to end says so and moves on:
to AVAILABLE (upstream's exporter in direct mode, waiting for the next
lease) or to a fresh session, LEASE_READY again (jumpwire in a local shell
or direct mode), where driver calls work. One without (upstream's local
shell) answers False and keeps serving."""

import time
from typing import Any

from jumpstarter.common import ExporterStatus
from jumpstarter_protocol import jumpstarter_pb2


def status(client: Any) -> jumpstarter_pb2.GetStatusResponse:
    return client.portal.call(client.stub.GetStatus, jumpstarter_pb2.GetStatusRequest())


def test_end_session(client: Any) -> None:
    before = status(client)
    assert ExporterStatus.from_proto(before.status) == ExporterStatus.LEASE_READY
    ended = client.portal.call(client.end_session_async)
    if not ended:
        assert (
            ExporterStatus.from_proto(status(client).status)
            == ExporterStatus.LEASE_READY
        )
        assert client.power.on() is None
        return
    deadline = time.monotonic() + 30
    while True:
        now = status(client)
        state = ExporterStatus.from_proto(now.status)
        settled = state in (ExporterStatus.AVAILABLE, ExporterStatus.LEASE_READY)
        if now.status_version > before.status_version and settled:
            break
        assert time.monotonic() < deadline, (
            f"30s after EndSession the exporter is {state}"
        )
        time.sleep(0.1)
    if state == ExporterStatus.LEASE_READY:
        assert client.power.on() is None
