"""A Go-free harness: starts plugin processes as the exporter does (cookie,
socket directory, handshake on stdout) and talks the plugin protocol to them."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from jumpwire_pyhost import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE
from jumpwire_pyhost.pb import plugin_pb2 as pb
from jumpwire_pyhost.pb import plugin_pb2_grpc as pbg

HERE = Path(__file__).parent
DEADLINE = 30.0


def plugin_env(sockdir: Path) -> dict[str, str]:
    return {
        MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
        "PLUGIN_UNIX_SOCKET_DIR": str(sockdir),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(HERE),
        "JUMPWIRE_LOG_LEVEL": "DEBUG",
    }


def read_line(stream: Any, deadline: float = DEADLINE) -> str:
    """Reads one line from a pipe, failing at the deadline."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    buf = b""
    end = time.monotonic() + deadline
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise TimeoutError(f"no line within {deadline}s (got {buf!r})")
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf.decode()


def value(v: Any) -> struct_pb2.Value:
    return json_format.ParseDict(v, struct_pb2.Value())


def unvalue(v: struct_pb2.Value) -> Any:
    return json_format.MessageToDict(v)


class Plugin:
    """One plugin process and a client of its Driver service."""

    def __init__(self, type_path: str, sockdir: Path, proc: subprocess.Popen | None = None) -> None:
        self.type_path = type_path
        self.proc = proc or subprocess.Popen(
            [sys.executable, "-m", "jumpwire_pyhost", "serve", type_path],
            env=plugin_env(sockdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
        )
        self.handshake = read_line(self.proc.stdout)
        parts = self.handshake.strip().split("|")
        assert parts[:3] == ["1", "1", "unix"] and parts[4] == "grpc", self.handshake
        self.socket = parts[3]
        self.channel = grpc.insecure_channel("unix:" + self.socket)
        self.rpc = pbg.DriverStub(self.channel)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def configure(
        self, config: dict[str, Any] | None = None, name: str = "dut", path: str = "dut"
    ) -> pb.ConfigureResponse:
        req = pb.ConfigureRequest(type=self.type_path, name=name, path=path)
        req.config.update(config or {})
        return self.rpc.Configure(req, timeout=DEADLINE)

    def call(self, method: str, *args: Any, child: str = "") -> Any:
        md = (("jumpwire-instance", child),) if child else ()
        r = self.rpc.Call(pb.CallRequest(method=method, args=[value(a) for a in args]), timeout=DEADLINE, metadata=md)
        return unvalue(r.result)

    def stream_call(self, method: str, *args: Any, child: str = "") -> list[Any]:
        md = (("jumpwire-instance", child),) if child else ()
        req = pb.CallRequest(method=method, args=[value(a) for a in args])
        return [unvalue(r.result) for r in self.rpc.StreamingCall(req, timeout=DEADLINE, metadata=md)]

    def byte_stream(self, frames: list[pb.Frame], **md: str) -> list[pb.Frame]:
        meta = tuple((k.replace("_", "-"), v) for k, v in md.items())
        return list(self.rpc.Stream(iter(frames), timeout=DEADLINE, metadata=meta))

    def stderr_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (after the process ended)."""
        out = []
        for line in self.proc.stderr.read().decode().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def stop(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(DEADLINE)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture
def sockdir(tmp_path: Path) -> Path:
    d = tmp_path / "sock"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def start(sockdir: Path) -> Iterator[Any]:
    started: list[Plugin] = []

    def _start(type_path: str, config: dict[str, Any] | None = None, configure: bool = True) -> Plugin:
        p = Plugin(type_path, sockdir)
        started.append(p)
        if configure:
            resp = p.configure(config)
            assert not resp.problems, resp.problems
        return p

    yield _start
    for p in started:
        p.stop()


def data(b: bytes) -> pb.Frame:
    return pb.Frame(payload=b)


GOAWAY = pb.Frame(kind=pb.FRAME_KIND_GOAWAY)


def payload(frames: list[pb.Frame]) -> bytes:
    return b"".join(f.payload for f in frames if f.kind == pb.FRAME_KIND_DATA)
