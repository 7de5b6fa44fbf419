"""The zygote forks instances that serve as if the exporter had started them,
reports their exits, and takes them along when it goes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEADLINE, Plugin, plugin_env

from jumpwire_pyhost.pb import plugin_pb2 as pb

POWER = "jumpstarter_driver_power.driver.MockPower"


class Zygote:
    def __init__(self, sockdir: Path) -> None:
        self.sockdir = sockdir
        self.ctl, theirs = socket.socketpair()
        env = plugin_env(sockdir)
        env["JUMPWIRE_ZYGOTE_FD"] = str(theirs.fileno())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jumpwire_pyhost",
                "zygote",
                "--preload",
                "jumpstarter_driver_power.driver.MockPower",
            ],
            env=env,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        theirs.close()
        self.ctl.settimeout(DEADLINE)
        self.rfile = self.ctl.makefile("rb")
        self.n = 0

    def read(self) -> dict:
        return json.loads(self.rfile.readline())

    def spawn(self, type_path: str) -> Plugin:
        self.n += 1
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        msg = {"spawn": self.n, "type": type_path, "env": plugin_env(self.sockdir)}
        socket.send_fds(self.ctl, [json.dumps(msg).encode() + b"\n"], [out_w, err_w])
        os.close(out_w)
        os.close(err_w)
        reply = self.read()
        assert reply == {"spawned": self.n, "pid": reply["pid"]}, reply
        proc = _Forked(reply["pid"], os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))
        return Plugin(type_path, self.sockdir, proc=proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(DEADLINE)
        self.rfile.close()
        self.ctl.close()


class _Forked:
    """The parts of Popen the harness uses, for a process the zygote forked."""

    def __init__(self, pid: int, stdout, stderr) -> None:
        self.pid, self.stdout, self.stderr = pid, stdout, stderr

    def poll(self):
        return None if _alive(self.pid) else 0

    def wait(self, timeout: float):
        return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between the open and the read
        return False


@pytest.fixture
def zygote(sockdir: Path):
    z = Zygote(sockdir)
    yield z
    z.stop()


def test_instances_serve_and_exits_are_reported(zygote: Zygote) -> None:
    a = zygote.spawn("jumpstarter_driver_power.driver.MockPower")
    b = zygote.spawn("testdrivers.Kinds")
    try:
        assert not a.configure({}).problems and not b.configure({}).problems
        assert a.call("on") is None
        assert b.call("async_add", 1, 2) == 3
        assert os.getpgid(a.pid) == a.pid  # a process group of its own
        os.kill(b.pid, signal.SIGKILL)
        assert zygote.read() == {"exit": b.pid, "signal": signal.SIGKILL}
        assert a.call("off") is None
        a.rpc.Close(pb.CloseRequest(), timeout=DEADLINE)
        assert zygote.read() == {"exit": a.pid, "code": 0}
    finally:
        a.stop()
        b.stop()


def test_instances_go_with_the_zygote(zygote: Zygote) -> None:
    a = zygote.spawn("jumpstarter_driver_power.driver.MockPower")
    try:
        os.kill(zygote.proc.pid, signal.SIGKILL)
        zygote.proc.wait(DEADLINE)
        import time

        end = time.monotonic() + DEADLINE
        while _alive(a.pid) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(a.pid)
    finally:
        a.stop()


def test_the_zygote_refuses_to_run_by_hand(sockdir: Path) -> None:
    env = plugin_env(sockdir)
    del env["JUMPWIRE_PLUGIN"]
    r = subprocess.run([sys.executable, "-m", "jumpwire_pyhost", "zygote"], env=env, capture_output=True, timeout=60)
    assert r.returncode == 1 and b"only a jumpwire exporter runs it" in r.stderr


def test_orphans_of_an_instance_are_killed(zygote: Zygote) -> None:
    # upstream's Shell starts its commands in a session of their own, out of
    # reach of a kill of the instance's process group.
    sh = zygote.spawn("jumpstarter_driver_shell.driver.Shell")
    try:
        assert not sh.configure({"methods": {"hang": "sleep 600 & echo $!; wait"}}).problems
        it = sh.rpc.StreamingCall(pb.CallRequest(method="call_method", args=[_s("hang"), _s({})]), timeout=DEADLINE)
        child = int(next(it).result.list_value.values[0].string_value)
        os.kill(sh.pid, signal.SIGKILL)
        assert zygote.read() == {"exit": sh.pid, "signal": signal.SIGKILL}
        import time

        end = time.monotonic() + DEADLINE
        while _alive(child) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        sh.stop()


def _s(v):
    from conftest import value

    return value(v)
