"""The call socket: unary calls framed as CallFrame messages, as the exporter
sends them when the plugin names the socket in Describe."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from conftest import DEADLINE, unvalue, value

from jumpwire_pyhost.calls import frame
from jumpwire_pyhost.pb import plugin_pb2 as pb

KINDS = "testdrivers.Kinds"


class Calls:
    """A connection to a plugin's call socket, as the exporter makes it."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(path)
        self.next = 0

    def send(self, method: str, *args: object, child: str = "") -> int:
        self.next += 1
        req = pb.CallRequest(method=method, args=[value(a) for a in args])
        self.sock.sendall(frame(pb.CallFrame(id=self.next, instance=child, request=req)))
        return self.next

    def cancel(self, call: int) -> None:
        self.sock.sendall(frame(pb.CallFrame(id=call, cancel=True)))

    def _exactly(self, n: int) -> bytes:
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise EOFError("the plugin closed the call socket")
            b += chunk
        return b

    def receive(self) -> pb.CallFrame:
        n = int.from_bytes(self._exactly(4), "big")
        return pb.CallFrame.FromString(self._exactly(n))

    def call(self, method: str, *args: object, child: str = "") -> pb.CallFrame:
        call = self.send(method, *args, child=child)
        f = self.receive()
        assert f.id == call
        return f

    def close(self) -> None:
        self.sock.close()


def calls_of(p) -> Calls:
    d = p.rpc.Describe(pb.DescribeRequest(), timeout=DEADLINE)
    assert d.call_socket.startswith(str(Path(p.socket).parent)), (d.call_socket, p.socket)
    return Calls(d.call_socket)


def test_calls_and_errors_as_on_grpc(start) -> None:
    p = start(KINDS)
    c = calls_of(p)
    assert unvalue(c.call("sync_hello", "board").response.result) == "hello board"
    assert unvalue(c.call("async_add", 2, 3).response.result) == 5
    cases = {
        "raise_value": (grpc.StatusCode.INVALID_ARGUMENT, "bad value"),
        "raise_notimpl": (grpc.StatusCode.UNIMPLEMENTED, "not here"),
        "raise_timeout": (grpc.StatusCode.DEADLINE_EXCEEDED, "too slow"),
        "raise_other": (grpc.StatusCode.UNKNOWN, "boom"),
        "not_exported": (grpc.StatusCode.NOT_FOUND, "method not_exported is not exported by the driver"),
        "count_sync": (grpc.StatusCode.INVALID_ARGUMENT, "count_sync is a streaming method; call it as one"),
    }
    for method, (code, message) in cases.items():
        f = c.call(method)
        assert (f.code, f.message) == (code.value[0], message), method
        assert not f.HasField("response")
    # A failed call leaves the connection serving.
    assert unvalue(c.call("sync_hello", "again").response.result) == "hello again"
    c.close()


def test_calls_run_side_by_side_and_cancel(start) -> None:
    p = start(KINDS)
    c = calls_of(p)
    slow = c.send("nap", 60)
    quick = c.send("async_add", 1, 1)
    f = c.receive()
    assert (f.id, unvalue(f.response.result)) == (quick, 2)  # not held up by the nap
    c.cancel(slow)
    deadline = time.monotonic() + DEADLINE
    while unvalue(c.call("get_naps_cancelled").response.result) != 1:
        assert time.monotonic() < deadline, "the cancelled nap was not cancelled"
        time.sleep(0.05)
    # Nothing more arrives for the cancelled call: the next frame is the next answer.
    assert unvalue(c.call("async_add", 2, 2).response.result) == 4
    c.close()


def test_children_the_driver_made(start) -> None:
    p = start("testdrivers.Board")
    c = calls_of(p)
    assert unvalue(c.call("name_of_board").response.result) == "dut"
    assert c.call("on", child="power").code == 0
    assert unvalue(c.call("sync_hello", "x", child="power.meter").response.result) == "meter x"
    f = c.call("on", child="nosuch")
    assert f.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no child 'nosuch'" in f.message
    c.close()


def test_garbage_closes_only_that_connection(start) -> None:
    p = start(KINDS)
    c = calls_of(p)
    c.sock.sendall((5).to_bytes(4, "big") + b"\xff\xff\xff\xff\xff")
    assert c.sock.recv(1) == b""  # closed
    c.close()
    big = calls_of(p)
    big.sock.sendall((1 << 31).to_bytes(4, "big"))
    assert big.sock.recv(1) == b""
    big.close()
    # The instance serves on, on a new connection and on gRPC.
    assert unvalue(calls_of(p).call("sync_hello", "x").response.result) == "hello x"
    assert p.call("sync_hello", "y") == "hello y"


def test_only_the_exporter_may_connect(start) -> None:
    p = start(KINDS)
    path = p.rpc.Describe(pb.DescribeRequest(), timeout=DEADLINE).call_socket
    # Another process (of the same user) is not the plugin's parent.
    code = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.settimeout(30)\n"
        "s.connect(sys.argv[1])\n"
        "print(os.getpid(), s.recv(1) == b'')\n"
    )
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, timeout=DEADLINE, text=True)
    pid, closed = r.stdout.split()
    assert closed == "True", r.stderr
    p.rpc.Close(pb.CloseRequest(), timeout=DEADLINE)
    p.proc.wait(DEADLINE)
    refusals = [e for e in p.stderr_lines() if e.get("@message") == "refused a connection to the call socket"]
    assert [e["pid"] for e in refusals] == [int(pid)]
