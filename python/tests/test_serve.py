"""The plugin process as the exporter sees it: handshake, describe,
configure, calls with upstream's semantics, failures that fail one call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from conftest import GOAWAY, Plugin, data, payload, plugin_env, value

from jumpwire_pyhost import CHILDREN_LABEL
from jumpwire_pyhost.pb import plugin_pb2 as pb


def test_refuses_to_run_without_the_exporter(sockdir: Path) -> None:
    env = plugin_env(sockdir)
    del env["JUMPWIRE_PLUGIN"]
    r = subprocess.run(
        [sys.executable, "-m", "jumpwire_pyhost", "serve", "jumpstarter_driver_power.driver.MockPower"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert r.stdout == b""
    assert b"only a jumpwire exporter runs it" in r.stderr


def test_missing_package_says_what_to_install(sockdir: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "jumpwire_pyhost", "serve", "jumpstarter_driver_nosuch.driver.Thing"],
        env=plugin_env(sockdir),
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 1 and r.stdout == b""
    last = r.stderr.decode().strip().splitlines()[-1]
    assert "jumpstarter_driver_nosuch.driver.Thing" in last
    assert "pip install jumpstarter-driver-nosuch" in last


def test_handshake_socket_is_private(start) -> None:
    p = start("jumpstarter_driver_power.driver.MockPower", configure=False)
    mode = os.stat(os.path.dirname(p.socket)).st_mode & 0o777
    assert mode == 0o700


def test_describe_names_methods_and_client(start) -> None:
    p = start("jumpstarter_driver_power.driver.MockPower", configure=False)
    d = p.rpc.Describe(pb.DescribeRequest(), timeout=30)
    assert d.version == "0.9.0"
    (t,) = d.types
    assert t.name == "jumpstarter_driver_power.driver.MockPower"
    assert t.client == "jumpstarter_driver_power.client.PowerClient"
    kinds = {m.name: m.kind for m in t.methods}
    assert kinds == {"on": pb.METHOD_KIND_UNARY, "off": pb.METHOD_KIND_UNARY, "read": pb.METHOD_KIND_STREAMING}


def test_mock_power(start) -> None:
    p = start("jumpstarter_driver_power.driver.MockPower")
    assert p.call("on") is None
    assert p.call("off") is None
    readings = p.stream_call("read")
    assert [r["voltage"] for r in readings] == [0.0, 5.0]


def test_config_problems_name_the_key(start) -> None:
    p = start("jumpstarter_driver_shell.driver.Shell", configure=False)
    resp = p.configure({"timeout": 3})
    assert [(x.key, x.message) for x in resp.problems] == [("methods", "required, missing")]
    p2 = start("testdrivers.Kinds", configure=False)
    resp = p2.configure({"greeting": [1]})
    assert [x.key for x in resp.problems] == ["greeting"]
    # A refused config leaves the process ready for a good one.
    assert not p.configure({"methods": {"hi": "echo hi"}}).problems


def test_configure_once(start) -> None:
    p = start("jumpstarter_driver_power.driver.MockPower")
    with pytest.raises(grpc.RpcError) as e:
        p.configure({})
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_every_kind_of_method(start) -> None:
    p = start("testdrivers.Kinds", {"greeting": "hi"})
    assert p.call("sync_hello", "bob") == "hi bob"
    assert p.call("async_add", 2, 3) == 5
    assert p.stream_call("count_sync", 3) == [0, 1, 2]
    assert p.stream_call("count_async", 4) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("method", "code", "words"),
    [
        ("raise_value", grpc.StatusCode.INVALID_ARGUMENT, "bad value"),
        ("raise_notimpl", grpc.StatusCode.UNIMPLEMENTED, "not here"),
        ("raise_timeout", grpc.StatusCode.DEADLINE_EXCEEDED, "too slow"),
        ("raise_other", grpc.StatusCode.UNKNOWN, "boom"),
        ("not_exported", grpc.StatusCode.NOT_FOUND, "not_exported"),
        ("nosuch", grpc.StatusCode.NOT_FOUND, "nosuch"),
        ("count_sync", grpc.StatusCode.INVALID_ARGUMENT, "streaming"),
    ],
)
def test_a_raising_method_fails_only_that_call(start, method: str, code: grpc.StatusCode, words: str) -> None:
    p = start("testdrivers.Kinds")
    with pytest.raises(grpc.RpcError) as e:
        p.call(method)
    assert e.value.code() == code
    assert words in e.value.details()
    assert p.call("sync_hello", "again") == "hello again"


def test_wrong_arguments_are_invalid(start) -> None:
    p = start("testdrivers.Kinds")
    with pytest.raises(grpc.RpcError) as e:
        p.call("async_add", 1)
    assert e.value.code() == grpc.StatusCode.UNKNOWN  # upstream: a TypeError is no ValueError
    assert "b" in e.value.details()


def test_streaming_call_fails_after_results(start) -> None:
    p = start("testdrivers.Kinds")
    got = []
    with pytest.raises(grpc.RpcError) as e:
        for r in p.rpc.StreamingCall(pb.CallRequest(method="raise_midstream"), timeout=30):
            got.append(r.result.number_value)
    assert got == [1]
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_calls_run_concurrently(start) -> None:
    p = start("testdrivers.Kinds")
    fut = p.rpc.Call.future(pb.CallRequest(method="sleep", args=[value(1.5)]))
    # A slow sync method runs in a thread: the event loop answers meanwhile.
    assert p.call("async_add", 1, 1) == 2
    assert not fut.done()
    assert fut.result(30).result.string_value == "slept"


def test_byte_stream(start) -> None:
    p = start("testdrivers.Kinds")
    out = p.byte_stream([data(b"abc"), data(b"def"), GOAWAY], jumpwire_method="upper")
    assert payload(out) == b"ABCDEF"
    assert out[-1].kind == pb.FRAME_KIND_GOAWAY


def test_byte_stream_unknown_method(start) -> None:
    p = start("testdrivers.Kinds")
    with pytest.raises(grpc.RpcError) as e:
        p.byte_stream([GOAWAY], jumpwire_method="sync_hello")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_reset_and_close(start) -> None:
    p = start("testdrivers.Kinds")
    p.rpc.Reset(pb.ResetRequest(), timeout=30)
    p.rpc.Reset(pb.ResetRequest(), timeout=30)
    assert p.call("get_resets") == 2
    p.rpc.Close(pb.CloseRequest(), timeout=30)
    assert p.proc.wait(30) == 0


def test_close_then_shutdown_end_quietly(start) -> None:
    # The exporter's stop: Close, then go-plugin's Shutdown, which arrives
    # while the server stops. The process ends 0 and logs no error.
    for _ in range(3):
        p = start("testdrivers.Kinds")
        p.rpc.Close(pb.CloseRequest(), timeout=30)
        try:
            p.channel.unary_unary("/plugin.GRPCController/Shutdown")(b"", timeout=30)
        except grpc.RpcError as e:  # the server may stop before it answers
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), e
        p.channel.close()
        assert p.proc.wait(30) == 0
        errors = [x for x in p.stderr_lines() if x["@level"] == "error"]
        assert not errors, errors


def test_crash_exits_the_process(start) -> None:
    p = start("testdrivers.Kinds")
    with pytest.raises(grpc.RpcError) as e:
        p.call("crash")
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert p.proc.wait(30) == 7


def test_sigterm_takes_the_group(start) -> None:
    p = start("jumpstarter_driver_shell.driver.Shell", {"methods": {"hang": "sleep 600 & echo $!; wait"}})
    it = p.rpc.StreamingCall(pb.CallRequest(method="call_method", args=[value("hang"), value({})]), timeout=30)
    first = next(it)
    child = int(first.result.list_value.values[0].string_value.strip())
    os.kill(p.pid, 15)
    assert p.proc.wait(30) != 0
    # The shell's sleep was in the plugin's process group: gone with it.
    _wait_gone(child)


def _wait_gone(pid: int) -> None:
    import time

    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return
        except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between the open and the read
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


def test_logs_are_hclog_json(start) -> None:
    p = start("testdrivers.Kinds")
    with pytest.raises(grpc.RpcError):
        p.call("raise_other")
    p.rpc.Close(pb.CloseRequest(), timeout=30)
    p.proc.wait(30)
    lines = p.stderr_lines()
    failed = [x for x in lines if x["@message"] == "call failed"]
    assert failed and failed[0]["@level"] == "warn" and "boom" in failed[0]["error"]
    assert all({"@level", "@message", "@timestamp", "@module"} <= x.keys() for x in lines)


def test_children_the_driver_creates(start) -> None:
    p = start("testdrivers.Board", configure=False)
    resp = p.configure({}, name="board", path="lab.board")
    children = json.loads(resp.labels[CHILDREN_LABEL])
    by_path = {c["path"]: c for c in children}
    assert set(by_path) == {"power", "console", "power.meter"}
    assert by_path["power"]["client"] == "jumpstarter_driver_power.client.PowerClient"
    assert {m["name"]: m["kind"] for m in by_path["console"]["methods"]} == {"connect": "stream"}
    assert by_path["power.meter"]["name"] == "meter"
    assert p.call("name_of_board") == "board"
    assert p.call("on", child="power") is None
    assert p.call("sync_hello", "x", child="power.meter") == "meter x"
    out = p.byte_stream([data(b"ping"), GOAWAY], jumpwire_method="connect", jumpwire_instance="console")
    assert payload(out) == b"ping"
    with pytest.raises(grpc.RpcError) as e:
        p.call("on", child="nosuch")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_composite_without_children(start) -> None:
    p = start("jumpstarter_driver_composite.driver.Composite", configure=False)
    resp = p.configure({})
    assert not resp.problems and CHILDREN_LABEL not in resp.labels
    d = p.rpc.Describe(pb.DescribeRequest(), timeout=30)
    assert d.types[0].client == "jumpstarter_driver_composite.client.CompositeClient"


def test_instances_are_separate_processes(start) -> None:
    a = start("jumpstarter_driver_power.driver.MockPower")
    b = start("testdrivers.Kinds")
    with pytest.raises(grpc.RpcError):
        b.call("crash")
    b.proc.wait(30)
    assert a.call("on") is None
    assert isinstance(a, Plugin) and a.pid != b.pid
