"""Read storage back with upstream Jumpstarter's own clients, as a test
engineer's script does inside `jw shell`: flash IMAGE, then
FlasherClient.dump (plain, gzip and zstd) on `flasher`,
StorageMuxClient.read_local_file on `mux` (switched to the host first),
and StorageMuxFlasherClient.dump (host, read, dut) on `disk`; the same
through upstream's own Python MockFlasher and MockStorageMux run by
jumpwire's Python host (`pyflasher`, `pymux`). compat/flasher_test.go
checks what arrived in OUTDIR.

    python compat/upstream_dump.py IMAGE OUTDIR
"""

import sys
from pathlib import Path

from jumpstarter.streams.encoding import Compression
from jumpstarter.utils.env import env


def main() -> None:
    image, out = sys.argv[1], Path(sys.argv[2])
    with env() as client:
        client.flasher.flash(image)
        client.flasher.dump(str(out / "flasher.img"))
        client.flasher.dump(str(out / "flasher.img.gz"), compression=Compression.GZIP)
        client.flasher.dump(str(out / "flasher.img.zst"), compression=Compression.ZSTD)

        client.mux.host()
        client.mux.write_local_file(image)
        client.mux.read_local_file(str(out / "mux.img"))
        client.mux.dut()

        client.disk.flash(image)
        client.disk.dump(str(out / "disk.img"))

        client.pyflasher.flash(image)
        client.pyflasher.dump(str(out / "pyflasher.img"))
        client.pymux.write_local_file(image)
        client.pymux.read_local_file(str(out / "pymux.img"))


if __name__ == "__main__":
    main()
