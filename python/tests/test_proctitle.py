"""An instance's process names itself after the instance (proctitle)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import jumpwire_pyhost
from jumpwire_pyhost.proctitle import short_name


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("p0", "p0"),
        ("board.power", "board.power"),
        ("lab.rack1.dut.power", "rack1.dut.power"),  # whole components that fit 15 bytes
        ("lab.rack12.dut.power", "dut.power"),
        ("a-very-long-instance-name", "a-very-long-ins"),
    ],
)
def test_short_name(path: str, want: str) -> None:
    assert short_name(path) == want


SCRIPT = """
import sys
from jumpwire_pyhost.proctitle import name_process
name_process(sys.argv[1], "pkg.driver.SomeDriver")
with open("/proc/self/comm") as f:
    print(f.read().strip())
with open("/proc/self/cmdline", "rb") as f:
    print(f.read().hex())
"""

TITLE = b"jumpwire-pyhost group.serial SomeDriver"


@pytest.mark.parametrize(
    ("argv0", "want"),
    [
        # A command line with room for the whole title.
        (sys.executable, TITLE + b"\0"),
        # `p s.py group.serial`: 20 bytes of room, so the title is cut and
        # still ends with a NUL, past which the kernel reads nothing.
        ("p", TITLE[:18] + b"\0"),
    ],
)
def test_name_process(tmp_path: Path, argv0: str, want: bytes) -> None:
    (tmp_path / "s.py").write_text(SCRIPT)
    package_dir = str(Path(jumpwire_pyhost.__file__).parents[1])  # found without the venv's site
    out = subprocess.run(
        [argv0, "s.py", "group.serial"],
        executable=sys.executable,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=package_dir),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "group.serial"
    assert bytes.fromhex(out[1]) == want
