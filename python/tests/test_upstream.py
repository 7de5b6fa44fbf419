"""Upstream's own driver packages, at the versions python/requirements-pyhost.txt
pins, hosted as the exporter hosts them."""

from __future__ import annotations

import socket
import threading
import uuid

import grpc
import pytest
from conftest import DEADLINE, GOAWAY, data, payload

from jumpwire_pyhost.pb import plugin_pb2 as pb


def handle(u: uuid.UUID) -> dict:
    # As the exporter passes it on: the bytes it sends are decompressed already.
    return {"kind": "client_stream", "uuid": str(u), "x_jmp_content_encoding": None}


def test_shell(start) -> None:
    p = start("jumpstarter_driver_shell.driver.Shell", {"methods": {"greet": "echo hello $1; echo oops >&2; exit 3"}})
    assert p.call("get_methods") == ["greet"]
    chunks = p.stream_call("call_method", "greet", {}, "world")
    out = "".join(c[0] for c in chunks)
    err = "".join(c[1] for c in chunks)
    assert out == "hello world\n" and err == "oops\n"
    assert chunks[-1][2] == 3


def upload(p, method: str, content: bytes, call_first: bool) -> None:
    """Uploads content to a resource and calls method with its handle, with the
    call and the stream in either order."""
    u = uuid.uuid4()
    frames = [data(content[i : i + 1000]) for i in range(0, len(content), 1000)] + [GOAWAY]
    stream = p.rpc.Stream(iter(frames), timeout=DEADLINE, metadata=(("jumpwire-resource", str(u)),))
    if call_first:
        fut = p.rpc.Call.future(pb.CallRequest(method=method, args=[_v(handle(u))]), timeout=DEADLINE)
        out = list(stream)
        fut.result()
    else:
        stream.initial_metadata()  # the exporter waits for the headers
        p.call(method, handle(u))
        out = list(stream)
    assert out[-1].kind == pb.FRAME_KIND_GOAWAY


def download(p, method: str) -> bytes:
    u = uuid.uuid4()
    stream = p.rpc.Stream(iter([GOAWAY]), timeout=DEADLINE, metadata=(("jumpwire-resource", str(u)),))
    stream.initial_metadata()
    p.call(method, handle(u))
    return payload(list(stream))


def _v(x):
    from conftest import value

    return value(x)


@pytest.mark.parametrize("call_first", [False, True])
def test_storage_mux_upload_and_read_back(start, call_first: bool) -> None:
    p = start("jumpstarter_driver_opendal.driver.MockStorageMux")
    for m in ("host", "dut", "off"):
        assert p.call(m) is None
    image = bytes(range(256)) * 400
    upload(p, "write", image, call_first)
    assert download(p, "read") == image


def test_flasher_flash_and_dump(start) -> None:
    p = start("jumpstarter_driver_opendal.driver.MockFlasher")
    upload(p, "flash", b"firmware v1", False)
    assert download(p, "dump") == b"firmware v1"


def test_an_upload_that_never_comes_fails_the_call(start) -> None:
    p = start("jumpstarter_driver_opendal.driver.MockFlasher")
    fut = p.rpc.Call.future(pb.CallRequest(method="flash", args=[_v(handle(uuid.uuid4()))]), timeout=2)
    with pytest.raises(grpc.RpcError) as e:
        fut.result()
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert p.rpc.Describe(pb.DescribeRequest(), timeout=DEADLINE).types


def test_echo_network(start) -> None:
    p = start("jumpstarter_driver_network.driver.EchoNetwork")
    out = p.byte_stream([data(b"one"), data(b"two"), GOAWAY], jumpwire_method="connect")
    assert payload(out) == b"onetwo"


def test_tcp_network(start) -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while chunk := conn.recv(4096):
                buf += chunk
            conn.sendall(buf[::-1])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        p = start("jumpstarter_driver_network.driver.TcpNetwork", {"host": "127.0.0.1", "port": port})
        assert p.call("address") == f"tcp://127.0.0.1:{port}"
        # The client's GOAWAY half-closes the TCP connection; the reply follows.
        out = p.byte_stream([data(b"abc"), data(b"def"), GOAWAY], jumpwire_method="connect")
        assert payload(out) == b"fedcba"
    finally:
        srv.close()
        t.join(DEADLINE)


def test_pyserial_loop(start) -> None:
    p = start("jumpstarter_driver_pyserial.driver.PySerial", {"url": "loop://", "check_present": False})
    it = p.rpc.Stream(_frames_then_wait([b"AT\r\n"]), timeout=DEADLINE, metadata=(("jumpwire-method", "connect"),))
    got = b""
    for f in it:
        got += f.payload
        if got == b"AT\r\n":
            it.cancel()
            break
    assert got == b"AT\r\n"


def _frames_then_wait(chunks):
    yield from (data(c) for c in chunks)
    threading.Event().wait(DEADLINE)  # keep the port open until the echo came back
