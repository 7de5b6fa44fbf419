"""Upstream Jumpstarter's client against an exporter: the tree, power,
serial, network and errors, through the Python API and the `j` CLI."""

import subprocess
import time
import urllib.request
from typing import Any

import pytest
from jumpstarter.client.core import DriverMethodNotImplemented
from jumpstarter_driver_composite.client import CompositeClient
from jumpstarter_driver_network.adapters import TcpPortforwardAdapter
from jumpstarter_driver_network.client import NetworkClient
from jumpstarter_driver_opendal.client import FlasherClient
from jumpstarter_driver_power.client import PowerClient, PowerReading
from jumpstarter_driver_pyserial.client import PySerialClient


def test_tree_and_client_classes(client: Any) -> None:
    assert isinstance(client, CompositeClient)
    assert set(client.children) == {"power", "dut", "sink"}
    assert isinstance(client.power, PowerClient)
    assert isinstance(client.dut, CompositeClient)
    assert set(client.dut.children) == {"serial", "web"}
    assert isinstance(client.dut.serial, PySerialClient)
    assert isinstance(client.dut.web, NetworkClient)
    assert isinstance(client.sink, FlasherClient)
    assert client.power.description == "Power of the board under test"


def test_power(client: Any) -> None:
    assert client.power.on() is None
    assert client.power.off() is None
    client.power.cycle(wait=0)
    readings = list(client.power.read())
    assert readings, "read() streamed no reading"
    for r in readings:
        assert isinstance(r, PowerReading)
        assert isinstance(r.voltage, float) and isinstance(r.current, float)


def test_unknown_method_is_not_implemented(client: Any) -> None:
    with pytest.raises(DriverMethodNotImplemented):
        client.power.call("no_such_method")


def test_serial_login_with_pexpect(client: Any, board_name: str) -> None:
    with client.dut.serial.pexpect() as p:
        p.sendline("")
        p.expect(f"{board_name} login: ", timeout=10)
        p.sendline("root")
        p.expect(f"root@{board_name}:~# ", timeout=10)
        p.sendline("uname -n")
        p.expect(f"root@{board_name}:~# ", timeout=10)
        assert board_name in p.before.decode()
        p.sendline("exit")


def test_port_forward_http(client: Any, board_name: str) -> None:
    with (
        TcpPortforwardAdapter(client=client.dut.web) as (host, port),
        urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as resp,
    ):
        assert resp.status == 200
        assert f"name: {board_name}" in resp.read().decode()


def test_logs_reach_the_client(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="exporter:driver")
    with client.log_stream():
        client.power.on()
        deadline = time.monotonic() + 10
        while not any(
            "power on" in r.getMessage()
            for r in caplog.records
            if r.name == "exporter:driver"
        ):
            assert time.monotonic() < deadline, (
                f"no driver log line 'power on' within 10s: {caplog.records}"
            )
            time.sleep(0.05)


def test_status(client: Any) -> None:
    from jumpstarter.common import ExporterStatus

    assert client.portal.call(client.get_status_async) == ExporterStatus.LEASE_READY


def test_j_cli() -> None:
    run = subprocess.run(
        ["j", "power", "on"], check=False, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        ["j", "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    for name in ("power", "dut", "sink"):
        assert name in run.stdout
