"""Fixtures of the compatibility suite: one client of upstream Jumpstarter's
Python API for the exporter in the environment (JUMPSTARTER_HOST), as a test
engineer's script gets it inside `jw shell` or `jmp shell`.
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from jumpstarter.utils.env import env


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    with env() as c:
        yield c


@pytest.fixture(scope="session")
def board_name() -> str:
    return os.environ.get("COMPAT_BOARD_NAME", "demo-board")
