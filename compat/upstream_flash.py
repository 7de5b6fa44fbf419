"""Flash an image into jumpwire's storage drivers with upstream Jumpstarter's
own clients, as a test engineer's script does inside `jw shell`:
FlasherClient.flash on `flasher` and StorageMuxFlasherClient.flash (host,
write, dut) on `disk`. compat/flasher_test.go checks what reached the files.

    python compat/upstream_flash.py IMAGE [ENCODING]

ENCODING, when given, declares IMAGE compressed with it (upstream's
`compression=`): the exporter decodes the upload. Without it the bytes
travel as they are, and the driver decompresses a gzip image itself.
"""

import sys

from jumpstarter.streams.encoding import Compression
from jumpstarter.utils.env import env


def main() -> None:
    image = sys.argv[1]
    how = Compression(sys.argv[2]) if len(sys.argv) > 2 else None
    with env() as client:
        client.flasher.flash(image, compression=how)
        client.disk.flash(image, compression=how)


if __name__ == "__main__":
    main()
