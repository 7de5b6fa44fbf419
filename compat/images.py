"""The upload images of the compatibility suite: a 16 MiB image and its
gzip, xz, bz2 and zstd versions, made once per suite run (compressing takes
longer than uploading) into a directory named by COMPAT_IMAGES or the first
argument.

    python compat/images.py DIR
"""

import bz2
import gzip
import hashlib
import lzma
import os
import random
import sys
from pathlib import Path

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

SIZE = 16 << 20
BLOCK = 1 << 10
ENCODINGS = ("gzip", "xz", "bz2", "zstd")


def make(dir: Path) -> str:
    """Writes image.bin, image.bin.<encoding> and image.sha256 into dir
    (unless there already) and returns the image's sha256."""
    sums = dir / "image.sha256"
    if sums.exists():
        return sums.read_text().strip()
    dir.mkdir(parents=True, exist_ok=True)
    # Random blocks, some repeated: it compresses, quickly, yet no two runs
    # of the suite upload the same bytes.
    rng = random.Random(os.getpid())
    blocks = [rng.randbytes(BLOCK) for _ in range(64)]
    data = b"".join(rng.choice(blocks) for _ in range(SIZE // BLOCK))
    (dir / "image.bin").write_bytes(data)
    (dir / "image.bin.gzip").write_bytes(gzip.compress(data, compresslevel=1))
    (dir / "image.bin.xz").write_bytes(lzma.compress(data, preset=0))
    (dir / "image.bin.bz2").write_bytes(bz2.compress(data, compresslevel=1))
    (dir / "image.bin.zstd").write_bytes(zstd.compress(data, level=1))
    digest = hashlib.sha256(data).hexdigest()
    sums.write_text(digest + "\n")
    return digest


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("COMPAT_IMAGES", "")
    if not target:
        sys.exit("usage: images.py DIR (or set COMPAT_IMAGES)")
    print(make(Path(target)))
