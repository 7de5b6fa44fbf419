"""Uploads (resource streams) through upstream's FlasherClient.flash into a
sink driver, which answers with the size and sha256 of what it read: plain,
and compressed as upstream's client sends a compressed image."""

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from jumpstarter.streams.encoding import Compression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import images


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    env = os.environ.get("COMPAT_IMAGES")
    d = Path(env) if env else tmp_path_factory.mktemp("images")
    return d, images.make(d)


@pytest.mark.parametrize(
    "how", [None, *Compression], ids=lambda c: c.value if c else "plain"
)
def test_upload_reaches_the_driver(
    client: Any, image_dir: tuple[Path, str], how: Compression | None
) -> None:
    d, want = image_dir
    src = d / ("image.bin" + (f".{how.value}" if how else ""))
    result = client.sink.flash(str(src), target="disk", compression=how)
    assert result["size"] == images.SIZE
    assert result["sha256"] == want
    assert result["target"] == "disk"
