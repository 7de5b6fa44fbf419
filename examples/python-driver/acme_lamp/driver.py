"""The driver side: runs in the exporter (under jumpwire, in a process of its own)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import field

import anyio
from anyio.streams.stapled import StapledObjectStream
from jumpstarter.driver import Driver, export, exportstream
from pydantic.dataclasses import dataclass


@dataclass(kw_only=True)
class Lamp(Driver):
    """A dimmable lamp on a bench supply."""

    # Config keys: `config: {watts: 60}` in the exporter file.
    watts: float = 40.0
    brightness: int = field(default=0, init=False)

    @classmethod
    def client(cls) -> str:
        return "acme_lamp.client.LampClient"

    def reset(self) -> None:
        # A new lease starts with the lamp off.
        self.brightness = 0
        super().reset()

    @export
    def on(self) -> None:
        """Switch the lamp fully on."""
        self.brightness = 100

    @export
    def off(self) -> None:
        """Switch the lamp off."""
        self.brightness = 0

    @export
    async def dim(self, percent: int) -> int:
        """Set the brightness in percent; returns the power drawn in watts."""
        percent = int(percent)
        if not 0 <= percent <= 100:
            # A ValueError reaches the client as an invalid argument.
            raise ValueError(f"brightness {percent} is not between 0 and 100")
        self.brightness = percent
        return round(self.watts * percent / 100)

    @export
    def state(self) -> int:
        """The brightness in percent."""
        return self.brightness

    @export
    async def watch(self, count: int) -> AsyncGenerator[int, None]:
        """Stream the brightness count times, 10 ms apart."""
        for _ in range(int(count)):
            yield self.brightness
            await anyio.sleep(0.01)

    @exportstream
    @asynccontextmanager
    async def console(self):
        """The lamp's service console: it answers every line with its brightness."""
        to_lamp_tx, to_lamp_rx = anyio.create_memory_object_stream[bytes](8)
        from_lamp_tx, from_lamp_rx = anyio.create_memory_object_stream[bytes](8)

        async def answer() -> None:
            async with to_lamp_rx, from_lamp_tx:
                async for line in to_lamp_rx:
                    await from_lamp_tx.send(f"{line.decode().strip()}: {self.brightness}%\n".encode())

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            yield StapledObjectStream(to_lamp_tx, from_lamp_rx)
