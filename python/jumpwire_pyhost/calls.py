"""The call socket (plugin protocol minor 6): unary calls as length-prefixed
CallFrame messages on a unix socket next to the gRPC one.

A gRPC call into grpc.aio costs this process a wake-up of grpcio's poller
thread, a hop to the event loop through a socket, and grpcio's own work on
both; here the event loop reads the socket itself. Only the exporter's
process may connect (SO_PEERCRED), which grpcio cannot check on its
socket."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from typing import Any

import grpc

from jumpwire_pyhost import MAX_MESSAGE_SIZE
from jumpwire_pyhost.pb import plugin_pb2 as pb
from jumpwire_pyhost.service import DriverService, Refused

log = logging.getLogger("pyhost")

_HEADER = 4
_UCRED = struct.Struct("3i")  # pid, uid, gid


def frame(f: pb.CallFrame) -> bytes:
    body = f.SerializeToString()
    return len(body).to_bytes(_HEADER, "big") + body


def peer(sock: socket.socket) -> tuple[int, int]:
    """The pid and uid of the process at the other end of a unix socket."""
    pid, uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return pid, uid


class CallConnection(asyncio.Protocol):
    """One connection from the exporter: each request runs as a task of its
    own, so a slow method holds up no other call; a cancel frame cancels it."""

    def __init__(self, service: DriverService, exporter: int) -> None:
        self.service = service
        self.exporter = exporter
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.calls: dict[int, asyncio.Task[None]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        pid, uid = peer(sock)
        if pid != self.exporter or uid != os.getuid():
            log.warning(
                "refused a connection to the call socket",
                extra={"pid": pid, "uid": uid, "exporter": self.exporter},
            )
            transport.abort()
            return
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buf += data
        while len(self.buf) >= _HEADER:
            n = int.from_bytes(self.buf[:_HEADER], "big")
            if n > MAX_MESSAGE_SIZE:
                self._garbage(f"a frame of {n} bytes is more than the largest message ({MAX_MESSAGE_SIZE})")
                return
            if len(self.buf) < _HEADER + n:
                return
            try:
                f = pb.CallFrame.FromString(bytes(self.buf[_HEADER : _HEADER + n]))
            except Exception as e:  # noqa: BLE001 - protobuf's DecodeError, or worse
                self._garbage(f"a frame that does not decode: {e}")
                return
            del self.buf[: _HEADER + n]
            if f.cancel:
                task = self.calls.pop(f.id, None)
                if task is not None:
                    task.cancel()
            elif f.HasField("request"):
                self.calls[f.id] = asyncio.get_running_loop().create_task(self._serve(f))
            else:
                self._answer(
                    f.id, Refused(grpc.StatusCode.INVALID_ARGUMENT, "a call frame with neither a request nor a cancel")
                )

    async def _serve(self, f: pb.CallFrame) -> None:
        try:
            answer: Any = await self.service.call(f.instance, f.request)
        except Refused as e:
            answer = e
        if self.calls.pop(f.id, None) is not None:  # not cancelled meanwhile
            self._answer(f.id, answer)

    def _answer(self, call: int, answer: Any) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if isinstance(answer, Refused):
            out = pb.CallFrame(id=call, code=answer.code.value[0], message=answer.message)
        else:
            out = pb.CallFrame(id=call, response=answer)
        data = frame(out)
        if len(data) - _HEADER > MAX_MESSAGE_SIZE:
            msg = f"the result is {len(data) - _HEADER} bytes, more than the largest message ({MAX_MESSAGE_SIZE})"
            data = frame(pb.CallFrame(id=call, code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message=msg))
        self.transport.write(data)

    def _garbage(self, why: str) -> None:
        log.warning("closed the call socket's connection", extra={"error": why})
        assert self.transport is not None
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for task in self.calls.values():
            task.cancel()
        self.calls.clear()


async def serve_calls(service: DriverService, path: str, exporter: int) -> asyncio.AbstractServer:
    """Listens on path for the exporter's process (pid exporter) alone."""
    return await asyncio.get_running_loop().create_unix_server(lambda: CallConnection(service, exporter), path=path)
