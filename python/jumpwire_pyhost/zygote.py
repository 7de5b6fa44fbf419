"""The zygote: one pre-imported Python process per interpreter that forks a
plugin process for each driver instance, so that N instances share the pages
of the interpreter, grpcio, pydantic and the driver packages, and start in
milliseconds instead of the hundreds an interpreter needs to import them.

The exporter starts the zygote with a connected unix stream socket as fd 3
(JUMPWIRE_ZYGOTE_FD names another). On it, each request is one JSON line
sent together with two file descriptors (SCM_RIGHTS), the write ends of the
instance's stdout and stderr pipes:

    {"spawn": ID, "type": "pkg.module.Class", "env": {"KEY": "VALUE", ...}}

and the zygote answers with JSON lines:

    {"spawned": ID, "pid": PID}                 the instance runs
    {"spawned": ID, "error": "..."}             it could not be forked
    {"exit": PID, "code": N}                    an instance exited
    {"exit": PID, "signal": N}                  an instance was killed

An instance is a process group of its own, whose handshake and logs go to
the pipes it was given, as if the exporter had started it. The zygote exits,
killing every instance's group, when its socket closes (the exporter is
gone), on SIGTERM, or when its parent dies."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
from typing import Any

from jumpwire_pyhost import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

PRELOAD = (
    "grpc",
    "grpc.aio",
    "google.protobuf.json_format",
    "anyio",
    # anyio imports its asyncio backend on first use (an instance's first
    # to_thread): imported here, its pages are shared by the instances
    # instead of copied into each (about 2 MiB of PSS an instance).
    "anyio._backends._asyncio",
    "pydantic",
    "jumpstarter.driver",
    "jumpstarter.common.serde",
    "jumpstarter.streams.common",
    "jumpwire_pyhost.service",
    "jumpwire_pyhost.serve",
    "jumpwire_pyhost.calls",
)


def preload(types: list[str], quiet: bool = False) -> None:
    """Imports what every instance needs, and the classes types name. The
    collector is off meanwhile: an import makes objects by the hundred
    thousand and very little garbage (under 2,000 objects for upstream's
    driver base), but each full collection walks every object made so far
    (a tenth of the import's time). What was made is then frozen, so that
    no later collection walks it either, here or in an instance."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        _preload(types, quiet)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _preload(types: list[str], quiet: bool) -> None:
    import importlib

    for m in PRELOAD:
        importlib.import_module(m)
    from jumpwire_pyhost.catalog import TypeNotFound, describe_type, import_driver, version_of

    for t in types:
        try:
            import_driver(t)
            # What Describe answers, worked out once for every instance
            # (the version only: distribution_of's hash of the package's
            # files is for the exporter's catalog, which asked before).
            describe_type(t)
            version_of(t)
        except TypeNotFound as e:
            if not quiet:  # the instance says so itself, to the exporter
                print(f"zygote: preloading {t}: {e}", file=sys.stderr)
        except BaseException as e:  # noqa: BLE001 - a module that fails to import fails its instance, not the zygote
            if not quiet:
                print(f"zygote: preloading {t}: {type(e).__name__}: {e}", file=sys.stderr)


class Zygote:
    def __init__(self, ctl: socket.socket, parent: int) -> None:
        self.ctl = ctl
        self.parent = parent
        self.children: set[int] = set()
        self.buf = b""
        self.rd, self.wr = os.pipe()
        os.set_blocking(self.wr, False)
        os.set_blocking(self.rd, False)

    def send(self, msg: dict[str, Any]) -> None:
        self.ctl.sendall(json.dumps(msg).encode() + b"\n")

    def loop(self) -> None:
        signal.set_wakeup_fd(self.wr)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self.stop(143))
        while True:
            r, _, _ = select.select([self.ctl, self.rd], [], [], 1.0)
            if self.rd in r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.rd, 512)
            self.reap()
            if os.getppid() != self.parent:
                self.stop(0)
            if self.ctl in r:
                data, fds, _, _ = socket.recv_fds(self.ctl, 65536, 8)
                if not data:
                    self.stop(0)
                self.buf += data
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    self.handle(json.loads(line), fds)
                    fds = []
                for fd in fds:
                    os.close(fd)

    def handle(self, req: dict[str, Any], fds: list[int]) -> None:
        rid = req.get("spawn")
        # The class is imported here, before the fork, once: every later
        # instance of it shares the import. (The exporter starts another
        # zygote when the class's package changed.)
        preload([str(req.get("type", ""))], quiet=True)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send({"spawned": rid, "error": f"expected 2 file descriptors (stdout, stderr), got {len(fds)}"})
            return
        # Objects that exist now are never collected in the children: the
        # collector does not write to their pages, which stay shared.
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds:
                os.close(fd)
            self.send({"spawned": rid, "error": f"fork: {e}"})
            return
        if pid == 0:
            self.become_instance(req, fds)  # never returns
        for fd in fds:
            os.close(fd)
        self.children.add(pid)
        self.send({"spawned": rid, "pid": pid})

    def become_instance(self, req: dict[str, Any], fds: list[int]) -> None:
        code = 1
        try:
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            for s in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(s, signal.SIG_DFL)
            self.ctl.close()
            os.close(self.rd)
            os.close(self.wr)
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for fd in fds:
                os.close(fd)
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in (req.get("env") or {}).items()})
            from jumpwire_pyhost.serve import run

            # The zygote forks from its only thread: the parent-death
            # signal alone is enough, and saves each instance a thread.
            code = run(str(req.get("type", "")), exporter=self.parent, watchdog=False)
        except BaseException as e:  # noqa: BLE001 - the child must never return into the zygote's loop
            with contextlib.suppress(Exception):
                print(f"pyhost instance: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os._exit(code)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self.children:
                # An orphan the zygote adopted and killed; what it started
                # was adopted in turn.
                self.kill_orphans()
                continue
            self.children.discard(pid)
            # Whatever the instance started goes with it: its process group,
            # and processes in sessions of their own, which the kernel gave to
            # the zygote (a subreaper) when the instance died.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            self.kill_orphans()
            msg: dict[str, Any] = {"exit": pid}
            if os.WIFSIGNALED(status):
                msg["signal"] = os.WTERMSIG(status)
            else:
                msg["code"] = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                self.send(msg)

    def kill_orphans(self) -> None:
        from jumpwire_pyhost.serve import children_of

        for pid in children_of(os.getpid()):
            if pid not in self.children:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    pgid = os.getpgid(pid)
                    if pgid != os.getpgrp():
                        os.killpg(pgid, signal.SIGKILL)
                    os.kill(pid, signal.SIGKILL)

    def stop(self, code: int) -> None:
        from jumpwire_pyhost.serve import kill_descendants

        # Everything below the zygote: instances, and what they started in
        # sessions of their own (upstream's Shell does), which a kill of an
        # instance's group would miss.
        kill_descendants()
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(code)


def become_subreaper() -> None:
    """Makes the zygote the parent of its instances' orphans (Linux), so that it
    can kill what an instance started when the instance dies."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def run_zygote(types: list[str]) -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("this is jumpwire's Python zygote: only a jumpwire exporter runs it", file=sys.stderr)
        return 1
    fd = int(os.environ.get("JUMPWIRE_ZYGOTE_FD", "3"))
    try:
        ctl = socket.socket(fileno=fd)
    except OSError as e:
        print(f"zygote: fd {fd} is not the exporter's socket: {e}", file=sys.stderr)
        return 1
    from jumpwire_pyhost.serve import die_with_parent

    preload(types)
    # No thread may run at a fork but the one forking: the loop checks the
    # parent itself instead of a watchdog thread.
    die_with_parent(watchdog=False)
    become_subreaper()
    Zygote(ctl, os.getppid()).loop()
    return 0
