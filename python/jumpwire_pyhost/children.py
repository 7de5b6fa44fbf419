"""The configured children of a hosted driver.

Under upstream's exporter a driver's ``children`` are the driver objects its
config placed under it, in the same process, and driver code calls their
methods directly (``self.children["power"].on()``). Under jumpwire every
configured instance runs in a process of its own, Go or Python, so a driver
gets a :class:`ChildProxy` for each: a ``Driver`` whose exported methods call
the child through the exporter (the Children service, on a socket the
exporter serves to this process only), and whose config keys read as
attributes (``self.children["tcp"].host``).

How a call behaves follows how upstream driver code calls a child:

- from a thread that runs no event loop (a plain ``def`` method, which the
  host runs in a worker thread as upstream's exporter does; ``__post_init__``)
  a call blocks and returns the result, a streaming method returns an
  iterator;
- from the event loop (an ``async def`` method) a call returns an awaitable
  (``await power.on()``), a streaming method an async iterator (``async for``);
- a byte-stream method (``@exportstream``) is an async context manager that
  yields an anyio byte stream (``async with serial.connect() as stream``).

Errors keep their kind: the child's INVALID_ARGUMENT raises a ValueError,
UNIMPLEMENTED a NotImplementedError, DEADLINE_EXCEEDED a TimeoutError, each
also a :class:`ChildError`; anything else (the child crashed, the session
ended) a ChildError carrying the gRPC code, which the parent's own call then
fails with unless the driver handles it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from anyio import EndOfStream
from anyio.abc import ByteStream
from google.protobuf import json_format
from jumpstarter.common.serde import decode_value, encode_value
from jumpstarter.driver import Driver

from jumpwire_pyhost import MAX_MESSAGE_SIZE, METHOD_HEADER
from jumpwire_pyhost.pb import plugin_pb2 as pb
from jumpwire_pyhost.pb import plugin_pb2_grpc as pbg

CHILD_HEADER = "jumpwire-child"

_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
    ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
]


class ChildError(Exception):
    """A call to a configured child failed; code is the gRPC status it failed with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChildValueError(ChildError, ValueError):
    pass


class ChildNotImplementedError(ChildError, NotImplementedError):
    pass


class ChildTimeoutError(ChildError, TimeoutError):
    pass


_KINDS = {
    grpc.StatusCode.INVALID_ARGUMENT: ChildValueError,
    grpc.StatusCode.UNIMPLEMENTED: ChildNotImplementedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: ChildTimeoutError,
}


def child_error(code: grpc.StatusCode, message: str) -> ChildError:
    return _KINDS.get(code, ChildError)(code, message)


def _raise(e: grpc.RpcError) -> None:
    raise child_error(e.code(), e.details() or str(e.code())) from None


class ChildLink:
    """The connection to the exporter's Children service: a blocking channel
    for calls from worker threads, an asyncio one for calls from the loop."""

    def __init__(self, socket: str) -> None:
        self.target = "unix:" + socket
        self._lock = threading.Lock()
        self._sync: pbg.ChildrenStub | None = None
        self._aio: tuple[asyncio.AbstractEventLoop, grpc.aio.Channel] | None = None

    def sync(self) -> pbg.ChildrenStub:
        with self._lock:
            if self._sync is None:
                self._sync = pbg.ChildrenStub(grpc.insecure_channel(self.target, options=_OPTIONS))
            return self._sync

    def aio(self) -> grpc.aio.Channel:
        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio[0] is not loop:
            self._aio = (loop, grpc.aio.insecure_channel(self.target, options=_OPTIONS))
        return self._aio[1]


class _NoLink:
    """The link of children that cannot be called: the exporter offered no
    Children service (an exporter older than protocol minor 4)."""

    def __getattr__(self, _name: str) -> Any:
        raise ChildError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "the exporter offers no way to call this driver's children (it speaks plugin protocol minor < 4)",
        )


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Method:
    """One exported method of a child, bound to the child."""

    def __init__(self, link: Any, child: pb.Child, m: pb.Method) -> None:
        self.link = link
        self.child = child
        self.m = m
        self.__name__ = m.name
        self.__doc__ = m.description or None
        self.metadata = ((CHILD_HEADER, child.uuid),)

    def _args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Positional arguments for the wire; keyword arguments are placed
        by the parameter names the child's type declares."""
        out = list(args)
        if not kwargs:
            return out
        params = list(self.m.param_info)
        for p in params[len(out) :]:
            if p.name in kwargs:
                out.append(kwargs.pop(p.name))
            elif p.HasField("default"):
                out.append(decode_value(p.default))
            else:
                break
        if kwargs:
            raise TypeError(f"{self.child.name}.{self.m.name}() got unexpected keyword arguments: {', '.join(kwargs)}")
        return out

    def _request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> pb.CallRequest:
        return pb.CallRequest(method=self.m.name, args=[encode_value(a) for a in self._args(args, kwargs)])

    def __repr__(self) -> str:
        return f"<method {self.m.name} of child {self.child.name} ({self.child.path})>"


class _Unary(_Method):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        req = self._request(args, kwargs)
        if _in_loop():
            return self._acall(req)
        try:
            return decode_value(self.link.sync().Call(req, metadata=self.metadata).result)
        except grpc.RpcError as e:
            _raise(e)

    async def _acall(self, req: pb.CallRequest) -> Any:
        stub = pbg.ChildrenStub(self.link.aio())
        try:
            resp = await stub.Call(req, metadata=self.metadata)
        except grpc.RpcError as e:
            _raise(e)
        return decode_value(resp.result)


class _Streaming(_Method):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        req = self._request(args, kwargs)
        if _in_loop():
            return self._aiter(req)
        return self._iter(req)

    def _iter(self, req: pb.CallRequest) -> Iterator[Any]:
        call = self.link.sync().StreamingCall(req, metadata=self.metadata)
        try:
            for resp in call:
                yield decode_value(resp.result)
        except grpc.RpcError as e:
            _raise(e)
        finally:
            call.cancel()

    async def _aiter(self, req: pb.CallRequest) -> AsyncIterator[Any]:
        call = pbg.ChildrenStub(self.link.aio()).StreamingCall(req, metadata=self.metadata)
        try:
            async for resp in call:
                yield decode_value(resp.result)
        except grpc.RpcError as e:
            _raise(e)
        finally:
            call.cancel()


class ChildByteStream(ByteStream):
    """A byte stream to a child's @exportstream method."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._eof_sent = False

    async def send(self, item: bytes) -> None:
        try:
            await self._call.write(pb.Frame(payload=bytes(item)))
        except grpc.RpcError as e:
            _raise(e)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                f = await self._call.read()
            except grpc.RpcError as e:
                _raise(e)
            if f is grpc.aio.EOF:
                code = await self._call.code()
                if code != grpc.StatusCode.OK:
                    raise child_error(code, await self._call.details())
                raise EndOfStream
            if f.kind == pb.FRAME_KIND_GOAWAY:
                raise EndOfStream
            if f.kind == pb.FRAME_KIND_DATA and f.payload:
                return f.payload

    async def send_eof(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            await self._call.write(pb.Frame(kind=pb.FRAME_KIND_GOAWAY))
            await self._call.done_writing()

    async def aclose(self) -> None:
        self._call.cancel()


class _ByteStreamMethod(_Method):
    def __call__(self) -> Any:
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[ChildByteStream]:
        call = pbg.ChildrenStub(self.link.aio()).Stream(metadata=(*self.metadata, (METHOD_HEADER, self.m.name)))
        # The child answers with its headers once the stream is open; an
        # error (no such method, the child is down) ends the call instead.
        await call.initial_metadata()
        if call.done():
            code = await call.code()
            raise child_error(code, await call.details())
        stream = ChildByteStream(call)
        try:
            yield stream
        finally:
            await stream.aclose()


_METHODS = {
    pb.METHOD_KIND_UNARY: _Unary,
    pb.METHOD_KIND_STREAMING: _Streaming,
    pb.METHOD_KIND_BYTE_STREAM: _ByteStreamMethod,
}

# Names a child's method or config key may not shadow: the proxy's life
# follows the child's own process, which the exporter resets and closes.
_RESERVED = {"close", "reset", "children", "resources", "logger", "uuid", "labels", "client", "report", "enumerate"}


class ChildProxy(Driver):
    """Stands in a driver's ``children`` for a configured child that runs in a
    process of its own. Its exported methods call the child; its config keys
    are attributes; close() and reset() do nothing (the exporter resets and
    closes every instance itself)."""

    @classmethod
    def client(cls) -> str:
        return "jumpstarter.client.DriverClient"

    @classmethod
    def build(cls, child: pb.Child, link: Any) -> ChildProxy:
        from jumpwire_pyhost.service import integral

        grand = {c.name: cls.build(c, link) for c in child.children}
        proxy = cls(children=grand)
        object.__setattr__(proxy, "jumpwire_child", child)
        object.__setattr__(proxy, "_link", link)
        object.__setattr__(proxy, "labels", {**proxy.labels, "jumpstarter.dev/name": child.name})
        config = integral(json_format.MessageToDict(child.config)) if child.HasField("config") else {}
        for k, v in config.items():
            if k not in _RESERVED and not k.startswith("_"):
                object.__setattr__(proxy, k, v)
        for m in child.methods:
            if m.name not in _RESERVED and not m.name.startswith("_"):
                object.__setattr__(proxy, m.name, _METHODS.get(m.kind, _Unary)(link, child, m))
        return proxy

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Calls the child's unary method by name, also one whose name the
        proxy keeps for itself (close, reset)."""
        m = next((m for m in self.jumpwire_child.methods if m.name == method), None)
        if m is None:
            m = pb.Method(name=method, kind=pb.METHOD_KIND_UNARY)
        return _METHODS.get(m.kind, _Unary)(self._link, self.jumpwire_child, m)(*args, **kwargs)

    def close(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def __repr__(self) -> str:
        c = self.jumpwire_child
        return f"<child {c.name}: {c.type or 'composite'} at {c.path}>"


def build_children(children: list[pb.Child], socket: str) -> dict[str, ChildProxy]:
    """The proxies of an instance's configured children."""
    link: Any = ChildLink(socket) if socket else _NoLink()
    return {c.name: ChildProxy.build(c, link) for c in children}
