"""The plugin protocol's Driver service, for one upstream driver instance."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any
from uuid import UUID

import grpc
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream, to_thread
from google.protobuf import json_format
from jumpstarter.common.serde import decode_value, encode_value

import jumpwire_pyhost
from jumpwire_pyhost import DRIVER_ERROR_TRAILER, INSTANCE_HEADER, METHOD_HEADER, PROTOCOL_MINOR, RESOURCE_HEADER
from jumpwire_pyhost.catalog import TypeNotFound, describe_type, method_kind, version_of
from jumpwire_pyhost.children import ChildError
from jumpwire_pyhost.pb import plugin_pb2 as pb
from jumpwire_pyhost.pb import plugin_pb2_grpc as pbg
from jumpwire_pyhost.tree import ConfigError, Instance

log = logging.getLogger("pyhost")

_DONE = object()


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return None


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """Fails the call with the plugin's own answer, marked as such (protocol
    minor 3): the host passes it on at once instead of waiting to learn
    whether the process died."""
    context.set_trailing_metadata(((DRIVER_ERROR_TRAILER, "1"),))
    await context.abort(code, message)


class Refused(Exception):
    """The plugin's own answer to a call that fails: a status code and its
    sentence, as the client will see them."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def integral(v: Any) -> Any:
    """Turns whole floats back into ints: a config travels as a protobuf
    Struct, whose numbers are doubles, but upstream drivers read their YAML
    config, where 115200 is an int (and a plain dataclass keeps what it gets)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    if isinstance(v, dict):
        return {k: integral(x) for k, x in v.items()}
    if isinstance(v, list):
        return [integral(x) for x in v]
    return v


def status_of(e: BaseException) -> grpc.StatusCode:
    """The gRPC code upstream's exporter answers for an exception a driver
    method raised, which upstream's client turns back into its exceptions."""
    if isinstance(e, ChildError):
        return e.code  # a child's failure keeps its kind through the parent's call
    if isinstance(e, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(e, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(e, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.UNKNOWN


class DriverService(pbg.DriverServicer):
    """Serves one instance of the driver class type_path."""

    def __init__(
        self,
        type_path: str,
        on_close: Callable[[], None] | None = None,
        call_socket: str = "",
        on_configure: Callable[[str], None] | None = None,
    ) -> None:
        self.type_path = type_path
        self.call_socket = call_socket
        self.instance: Instance | None = None
        self.closed = False
        self._on_close = on_close
        self._on_configure = on_configure  # called with the instance's path
        self._lock = asyncio.Lock()

    async def Describe(self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext) -> pb.DescribeResponse:
        resp = pb.DescribeResponse(sdk_version=f"pyhost {jumpwire_pyhost.__version__}", protocol_minor=PROTOCOL_MINOR)
        try:
            resp.types.append(describe_type(self.type_path))
        except TypeNotFound as e:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"{self.type_path}: {e}")
        resp.version = version_of(self.type_path)
        resp.call_socket = self.call_socket
        return resp

    async def Configure(self, request: pb.ConfigureRequest, context: grpc.aio.ServicerContext) -> pb.ConfigureResponse:
        async with self._lock:
            if self.instance is not None:
                await _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"this plugin process already serves an instance of {self.type_path}; "
                    "start another process for another instance",
                )
            if request.type != self.type_path:
                await _abort(
                    context,
                    grpc.StatusCode.NOT_FOUND,
                    f"this process hosts {self.type_path}, not driver type {request.type!r}",
                )
            if self._on_configure is not None:
                self._on_configure(request.path or request.name)
            config = integral(json_format.MessageToDict(request.config)) if request.HasField("config") else {}
            try:
                # Building a driver may block (it opens devices): off the event loop.
                self.instance = await to_thread.run_sync(
                    Instance,
                    self.type_path,
                    config,
                    request.name,
                    request.path,
                    list(request.children),
                    request.children_socket,
                )
            except ConfigError as e:
                return pb.ConfigureResponse(problems=e.problems)
            except TypeNotFound as e:
                await _abort(context, grpc.StatusCode.NOT_FOUND, f"{self.type_path}: {e}")
            log.debug("configured", extra={"type": self.type_path, "path": request.path})
            return self.instance.configure_response()

    def _find(self, rel: str, name: str, kinds: tuple[int, ...]) -> Any:
        """Finds an exported method of the addressed driver, as upstream does:
        only methods carrying the marker of their kind are callable."""
        if self.instance is None:
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "the driver is not configured")
        if self.closed:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "the driver is closed")
        driver = self.instance.driver(rel)
        if driver is None:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"{self.type_path} has no child {rel!r}")
        method = getattr(driver, name, None) if name and not name.startswith("_") else None
        if method is None:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"method {name} not found on driver")
        kind = method_kind(method)
        if kind not in kinds:
            if kind is None:
                raise Refused(grpc.StatusCode.NOT_FOUND, f"method {name} is not exported by the driver")
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"{name} is a {_kind_name(kind)} method; call it as one")
        return method

    async def _method(self, context: grpc.aio.ServicerContext, name: str, kinds: tuple[int, ...]) -> Any:
        try:
            return self._find(_metadata(context, INSTANCE_HEADER) or "", name, kinds)
        except Refused as e:
            await _abort(context, e.code, e.message)

    async def call(self, rel: str, request: pb.CallRequest) -> pb.CallResponse:
        """A unary call to the driver at rel (relative to the instance), on
        gRPC or the call socket. Every failure is a Refused."""
        method = self._find(rel, request.method, (pb.METHOD_KIND_UNARY,))
        try:
            args = [decode_value(a) for a in request.args]
            if inspect.iscoroutinefunction(method):
                result = await method(*args)
            else:
                result = await to_thread.run_sync(method, *args)
            return pb.CallResponse(result=encode_value(result))
        except Exception as e:
            raise self._refusal(request.method, e) from e

    async def Call(self, request: pb.CallRequest, context: grpc.aio.ServicerContext) -> pb.CallResponse:
        try:
            return await self.call(_metadata(context, INSTANCE_HEADER) or "", request)
        except Refused as e:
            await _abort(context, e.code, e.message)

    async def StreamingCall(
        self, request: pb.CallRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CallResponse]:
        method = await self._method(context, request.method, (pb.METHOD_KIND_STREAMING,))
        try:
            args = [decode_value(a) for a in request.args]
            if inspect.isasyncgenfunction(method):
                agen = method(*args)
                try:
                    async for v in agen:
                        yield pb.CallResponse(result=encode_value(v))
                finally:
                    await agen.aclose()
            else:
                gen = await to_thread.run_sync(method, *args)
                try:
                    while (v := await to_thread.run_sync(next, gen, _DONE)) is not _DONE:
                        yield pb.CallResponse(result=encode_value(v))
                finally:
                    close = getattr(gen, "close", None)
                    if close is not None:
                        await to_thread.run_sync(close)
        except Exception as e:
            await self._fail(context, request.method, e)

    def _refusal(self, method: str, e: Exception) -> Refused:
        if isinstance(e, Refused):
            return e
        code = status_of(e)
        if code == grpc.StatusCode.UNKNOWN:
            log.warning("call failed", extra={"method": method, "error": f"{type(e).__name__}: {e}"})
        return Refused(code, str(e))

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, e: Exception) -> None:
        r = self._refusal(method, e)
        await _abort(context, r.code, r.message)

    async def Stream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        resource = _metadata(context, RESOURCE_HEADER)
        if resource is not None:
            try:
                uuid = UUID(resource)
            except ValueError:
                await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"resource {resource!r} is not a uuid")
            if self.instance is None:
                await _abort(context, grpc.StatusCode.FAILED_PRECONDITION, "the driver is not configured")
            async with self.instance.resource(uuid) as stream:
                await context.send_initial_metadata(())
                await _pump(context, stream)
            return
        name = _metadata(context, METHOD_HEADER) or ""
        method = await self._method(context, name, (pb.METHOD_KIND_BYTE_STREAM,))
        try:
            async with method() as stream:
                await context.send_initial_metadata(())
                await _pump(context, stream)
        except Exception as e:
            await self._fail(context, name, e)

    async def Reset(self, request: pb.ResetRequest, context: grpc.aio.ServicerContext) -> pb.ResetResponse:
        if self.instance is not None:
            try:
                await to_thread.run_sync(self.instance.root.reset)
            except Exception as e:
                await _abort(context, grpc.StatusCode.INTERNAL, f"reset: {type(e).__name__}: {e}")
        return pb.ResetResponse()

    async def Close(self, request: pb.CloseRequest, context: grpc.aio.ServicerContext) -> pb.CloseResponse:
        already, self.closed = self.closed, True
        try:
            if self.instance is not None and not already:
                await to_thread.run_sync(self.instance.root.close)
        except Exception as e:
            await _abort(context, grpc.StatusCode.INTERNAL, f"close: {type(e).__name__}: {e}")
        finally:
            if self._on_close is not None and not already:
                self._on_close()
        return pb.CloseResponse()


def _kind_name(kind: int) -> str:
    return {pb.METHOD_KIND_STREAMING: "streaming", pb.METHOD_KIND_BYTE_STREAM: "byte-stream"}.get(kind, "unary")


class _Reset(Exception):
    pass


async def _pump(context: grpc.aio.ServicerContext, stream: Any) -> None:
    """Moves bytes between a Stream RPC and an anyio byte stream until the
    driver's side ends; then sends GOAWAY. The client's GOAWAY (or the end of
    its half) is passed on as send_eof, and RST_STREAM aborts."""

    async def inbound() -> None:
        while True:
            frame = await context.read()
            if frame is grpc.aio.EOF or frame.kind == pb.FRAME_KIND_GOAWAY:
                break
            if frame.kind == pb.FRAME_KIND_RST_STREAM:
                raise _Reset
            if frame.kind == pb.FRAME_KIND_DATA and frame.payload:
                try:
                    await stream.send(frame.payload)
                except (BrokenResourceError, ClosedResourceError):
                    return  # the driver stopped reading: its side decides the end
        try:
            await stream.send_eof()
        except AttributeError:
            await stream.aclose()  # a stream that cannot half-close ends whole
        except (BrokenResourceError, ClosedResourceError, OSError):
            pass

    async def outbound() -> None:
        while True:
            try:
                data = await stream.receive()
            except (EndOfStream, BrokenResourceError, ClosedResourceError):
                break
            if data:
                await context.write(pb.Frame(payload=bytes(data)))
        await context.write(pb.Frame(kind=pb.FRAME_KIND_GOAWAY))

    rx = asyncio.ensure_future(inbound())
    tx = asyncio.ensure_future(outbound())
    try:
        done, _ = await asyncio.wait({rx, tx}, return_when=asyncio.FIRST_COMPLETED)
        if rx in done and rx.exception() is not None:
            tx.cancel()
            if isinstance(rx.exception(), _Reset):
                return
            raise rx.exception()
        await tx
    finally:
        for t in (rx, tx):
            t.cancel()
        for t in (rx, tx):
            with suppress(asyncio.CancelledError, Exception):
                await t
