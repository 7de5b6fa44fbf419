"""A driver's configured children: the plugin calls them through the Children
service the exporter serves, here a stand-in that plays the children."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from jumpwire_pyhost.pb import plugin_pb2 as pb
from jumpwire_pyhost.pb import plugin_pb2_grpc as pbg


def _v(x: Any) -> struct_pb2.Value:
    return json_format.ParseDict(x, struct_pb2.Value())


class FakeChildren(pbg.ChildrenServicer):
    """Plays a power switch (u-power), a Kinds (u-kinds) and an echo (u-echo)."""

    def __init__(self) -> None:
        self.on = False
        self.calls: list[tuple[str, str, list[Any]]] = []

    def _who(self, context: grpc.ServicerContext) -> str:
        return dict(context.invocation_metadata()).get("jumpwire-child", "")

    def Call(self, request: pb.CallRequest, context: grpc.ServicerContext) -> pb.CallResponse:
        who, args = self._who(context), [json_format.MessageToDict(a) for a in request.args]
        self.calls.append((who, request.method, args))
        match who, request.method:
            case "u-power", "on" | "off":
                self.on = request.method == "on"
                return pb.CallResponse(result=_v(None))
            case "u-power", "state":
                return pb.CallResponse(result=_v(self.on))
            case "u-kinds", "sync_hello":
                return pb.CallResponse(result=_v(f"hi {args[0]}"))
            case "u-kinds", "async_add":
                return pb.CallResponse(result=_v(args[0] + args[1]))
            case "u-kinds", "raise_value":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "child kinds of bench: bad value")
            case "u-kinds", "crash":
                context.abort(
                    grpc.StatusCode.UNAVAILABLE, "child kinds of bench: driver bench.kinds exited with status 7"
                )
        context.abort(grpc.StatusCode.NOT_FOUND, f"{who} has no {request.method}")

    def StreamingCall(self, request: pb.CallRequest, context: grpc.ServicerContext) -> Iterator[pb.CallResponse]:
        who, args = self._who(context), [json_format.MessageToDict(a) for a in request.args]
        n = 3 if who == "u-power" else int(args[0])
        for i in range(n):
            yield pb.CallResponse(result=_v(i))

    def Stream(self, request_iterator: Iterator[pb.Frame], context: grpc.ServicerContext) -> Iterator[pb.Frame]:
        md = dict(context.invocation_metadata())
        assert md.get("jumpwire-child") == "u-echo" and md.get("jumpwire-method") == "connect"
        context.send_initial_metadata(())
        for f in request_iterator:
            if f.kind == pb.FRAME_KIND_GOAWAY:
                break
            yield pb.Frame(payload=f.payload)
        yield pb.Frame(kind=pb.FRAME_KIND_GOAWAY)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[tuple[FakeChildren, str]]:
    sock = str(tmp_path / "children.sock")
    fake = FakeChildren()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pbg.add_ChildrenServicer_to_server(fake, server)
    server.add_insecure_port("unix:" + sock)
    server.start()
    yield fake, sock
    server.stop(None)


def _m(name: str, kind: int = pb.METHOD_KIND_UNARY, *params: str) -> pb.Method:
    return pb.Method(name=name, kind=kind, param_info=[pb.Param(name=p, type="any") for p in params])


def _children() -> list[pb.Child]:
    power = pb.Child(
        name="power",
        uuid="u-power",
        path="bench.power",
        type="power",
        methods=[_m("on"), _m("off"), _m("state"), _m("read", pb.METHOD_KIND_STREAMING)],
    )
    kinds = pb.Child(
        name="kinds",
        uuid="u-kinds",
        path="bench.kinds",
        type="testdrivers.Kinds",
        methods=[
            _m("sync_hello", pb.METHOD_KIND_UNARY, "name"),
            _m("async_add", pb.METHOD_KIND_UNARY, "a", "b"),
            _m("count_async", pb.METHOD_KIND_STREAMING, "n"),
            _m("raise_value"),
            _m("crash"),
        ],
    )
    kinds.config.update({"greeting": "hi"})
    echo = pb.Child(name="echo", uuid="u-echo", path="bench.echo", methods=[_m("connect", pb.METHOD_KIND_BYTE_STREAM)])
    return [power, kinds, echo]


def _bench(start, sock: str, children: list[pb.Child] | None = None) -> Any:
    p = start("testdrivers.Bench", configure=False)
    req = pb.ConfigureRequest(type="testdrivers.Bench", name="bench", path="bench", children_socket=sock)
    req.children.extend(_children() if children is None else children)
    resp = p.rpc.Configure(req, timeout=30)
    return p, resp


def test_children_are_called_as_upstream_code_calls_them(start, children) -> None:
    fake, sock = children
    p, resp = _bench(start, sock)
    assert not resp.problems
    # Configured children are the exporter's to report, not made children.
    assert "jumpwire.dev/children" not in resp.labels
    assert p.call("sync_cycle") == [True, False]
    assert p.call("async_cycle") == [True, False]
    assert p.call("readings") == 3
    assert p.call("sync_readings") == 3
    assert p.call("sync_greet", "ann") == "hi ann"  # a keyword argument, placed by name
    assert ("u-kinds", "sync_hello", ["ann"]) in fake.calls
    assert p.call("async_add", 2, 3) == 5
    assert p.call("count", 3) == [0, 1, 2]
    assert p.call("greeting_of_kinds") == "hi"
    assert p.call("echo", "ping") == "ping"


@pytest.mark.parametrize(
    ("method", "code", "words"),
    [
        ("kinds_raises", grpc.StatusCode.INVALID_ARGUMENT, "bad value"),
        ("kinds_crashes", grpc.StatusCode.UNAVAILABLE, "driver bench.kinds exited with status 7"),
    ],
)
def test_a_child_failure_fails_the_parents_call_with_its_kind(start, children, method, code, words) -> None:
    _, sock = children
    p, _ = _bench(start, sock)
    with pytest.raises(grpc.RpcError) as e:
        p.call(method)
    assert e.value.code() == code
    assert words in e.value.details()
    # The plugin marks the error as its own answer.
    assert ("jumpwire-driver-error", "1") in tuple(e.value.trailing_metadata() or ())
    assert p.call("hello") == "bench"


def test_a_driver_that_requires_children_refuses_without(start, children) -> None:
    _, sock = children
    _, resp = _bench(start, sock, children=[])
    assert len(resp.problems) == 1
    assert "Bench: power driver not configured as a child" in resp.problems[0].message


def test_children_without_a_socket_say_why(start) -> None:
    p, resp = _bench(start, "")
    assert not resp.problems
    with pytest.raises(grpc.RpcError) as e:
        p.call("sync_cycle")
    assert "protocol minor < 4" in e.value.details()
