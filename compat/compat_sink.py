"""A sink driver for upstream Jumpstarter's exporter, the twin of jumpwire's
compat/sinkdriver: an upload's bytes are read and counted, and the flash call
answers with their size and sha256, so the suite checks what the driver saw.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from jumpstarter.driver import Driver, export


@dataclass(kw_only=True)
class Sink(Driver):
    """Reads uploads and reports their size and sha256."""

    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_opendal.client.FlasherClient"

    @export
    async def flash(self, source: Any, target: str | None = None) -> dict[str, Any]:
        digest = hashlib.sha256()
        size = 0
        async with self.resource(source) as res:
            async for chunk in res:
                digest.update(chunk)
                size += len(chunk)
        return {"size": size, "sha256": digest.hexdigest(), "target": target}
