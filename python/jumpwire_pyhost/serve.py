"""A plugin process: the go-plugin handshake, a plain gRPC server on a unix
socket, and the process's behaviour towards its parent.

Trust: the socket lives in a directory only the exporter's user can enter
(0700; the exporter's PLUGIN_UNIX_SOCKET_DIR, or a private one made here), and
the exporter checks the peer credentials of its connection (the pid it
started). grpcio cannot read the peer credentials of an incoming connection,
so unlike the Go SDK this side does not check the exporter's pid there: it
relies on the directory's mode. Its call socket (calls.py), where the
exporter sends unary calls, accepts only the exporter's pid."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import tempfile
import threading
from typing import IO

import grpc

from jumpwire_pyhost import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, MAX_MESSAGE_SIZE, PROTOCOL_VERSION, hclog
from jumpwire_pyhost.calls import serve_calls
from jumpwire_pyhost.catalog import TypeNotFound, import_driver
from jumpwire_pyhost.pb import plugin_pb2_grpc as pbg
from jumpwire_pyhost.proctitle import name_process
from jumpwire_pyhost.service import DriverService

log = logging.getLogger("pyhost")

# go-plugin's optional services, answered by hand so that no extra package is
# needed: the health check the host may ping, and the controller whose
# Shutdown the host calls before it kills a plugin.
_HEALTH_SERVING = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}
_PR_SET_PDEATHSIG = 1


class NotRunByExporter(Exception):
    """The process was started by hand, not by a jumpwire exporter."""


def check_cookie() -> None:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        raise NotRunByExporter(
            "this is a jumpwire driver plugin: only a jumpwire exporter runs it "
            "(name the Python driver class as an instance's type in an exporter config)"
        )


def die_with_parent(sig: int = signal.SIGTERM, *, watchdog: bool = True) -> None:
    """Asks the kernel to send sig when the parent dies (Linux), and (with
    watchdog, or where the kernel cannot) watches the parent's pid from a
    thread as well."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False

    def watch() -> None:
        while True:
            threading.Event().wait(1.0)
            if os.getppid() != parent:
                os.kill(os.getpid(), sig)
                return

    if watchdog or not armed:
        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def _parents() -> dict[int, list[int]]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    return parents


def children_of(pid: int) -> list[int]:
    return _parents().get(pid, [])


def descendants(pid: int) -> list[int]:
    """The processes below pid, found by their parent pids in /proc: drivers
    start processes in sessions of their own (upstream's Shell does), which a
    kill of the plugin's process group would miss."""
    parents = _parents()
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_descendants(sig: int = signal.SIGKILL) -> None:
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_group_and_exit(signum: int, _frame: object) -> None:
    # The exporter died or wants us gone: take whatever the driver started
    # (a shell's children, a qemu) along.
    kill_descendants()
    if os.getpgrp() == os.getpid():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(os.getpid(), signal.SIGTERM)
    os._exit(128 + signum)


def _generic_handlers() -> list[grpc.GenericRpcHandler]:
    def ident(b: bytes) -> bytes:
        return b

    async def health(_req: bytes, _ctx: grpc.aio.ServicerContext) -> bytes:
        return _HEALTH_SERVING

    async def shutdown(_req: bytes, _ctx: grpc.aio.ServicerContext) -> bytes:
        asyncio.get_running_loop().call_later(0.05, os._exit, 0)
        return b""

    health_h = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(health, ident, ident)},
    )
    ctl_h = grpc.method_handlers_generic_handler(
        "plugin.GRPCController",
        {"Shutdown": grpc.unary_unary_rpc_method_handler(shutdown, ident, ident)},
    )
    return [health_h, ctl_h]


def socket_dir() -> str:
    base = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None
    return tempfile.mkdtemp(prefix="pyhost-", dir=base)  # mode 0700


async def serve(type_path: str, handshake_out: IO[str], exporter: int | None = None) -> None:
    """Serves one instance of type_path until Close, SIGTERM or the parent's
    death. exporter is the pid of the exporter (by default the parent), the
    only process its call socket accepts."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_close() -> None:
        loop.call_soon(stopping.set)

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
            ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ]
    )
    d = socket_dir()
    path, calls_path = os.path.join(d, "plugin.sock"), os.path.join(d, "calls.sock")
    service = DriverService(
        type_path,
        on_close=on_close,
        call_socket=calls_path,
        # Configure runs on this thread, the main one, whose name is the process's.
        on_configure=lambda path: name_process(path, type_path),
    )
    pbg.add_DriverServicer_to_server(service, server)
    server.add_generic_rpc_handlers(_generic_handlers())
    server.add_insecure_port("unix:" + path)
    calls = await serve_calls(service, calls_path, os.getppid() if exporter is None else exporter)
    await server.start()
    handshake_out.write(f"1|{PROTOCOL_VERSION}|unix|{path}|grpc|\n")
    handshake_out.flush()
    log.debug("serving", extra={"type": type_path, "socket": path})
    try:
        await stopping.wait()
        calls.close()
        await server.stop(grace=1.0)
        # grpc's own task of each call (the Shutdown call's, often) may not
        # have seen its call end yet: asyncio.run would cancel it, and grpc
        # logs a cancelled call task as an error.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=0.25)
    finally:
        for p in (path, calls_path):
            with contextlib.suppress(OSError):
                os.remove(p)
        with contextlib.suppress(OSError):
            os.rmdir(d)


def run(type_path: str, *, watchdog: bool = True, exporter: int | None = None) -> int:
    """The body of a plugin process, started by the exporter (pid exporter;
    by default the parent). Returns its exit status. The process ends with
    its parent (a parent-death signal); watchdog also watches the parent
    from a thread, for a parent whose forking thread may exit before it
    does (the kernel sends the signal when that thread ends)."""
    try:
        check_cookie()
        import_driver(type_path)
    except (NotRunByExporter, TypeNotFound) as e:
        print(f"{type_path}: {e}" if isinstance(e, TypeNotFound) else e, file=sys.stderr)
        return 1
    # Only the handshake goes to stdout: whatever a driver prints lands on
    # stderr, where the exporter keeps it as plain log lines.
    handshake = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    hclog.setup(os.environ.get("JUMPWIRE_LOG_LEVEL", "INFO").upper())
    signal.signal(signal.SIGTERM, _kill_group_and_exit)
    die_with_parent(watchdog=watchdog)
    try:
        asyncio.run(serve(type_path, handshake, exporter))
    except KeyboardInterrupt:
        return 130
    return 0
