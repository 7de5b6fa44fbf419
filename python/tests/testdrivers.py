"""Upstream-style drivers the tests host: every kind of exported method, every
way to fail, and children created by the driver itself (as a Dutlink does)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager
from dataclasses import field

from anyio import create_memory_object_stream
from anyio.streams.stapled import StapledObjectStream
from jumpstarter.driver import Driver, export, exportstream
from jumpstarter_driver_network.driver import EchoNetwork
from jumpstarter_driver_power.driver import MockPower
from pydantic.dataclasses import dataclass


@dataclass(kw_only=True)
class Kinds(Driver):
    """Every kind of method upstream allows."""

    greeting: str = "hello"
    resets: int = field(default=0, init=False)
    naps_cancelled: int = field(default=0, init=False)

    @classmethod
    def client(cls) -> str:
        return "testdrivers_client.KindsClient"

    def reset(self) -> None:
        self.resets += 1
        super().reset()

    @export
    def sync_hello(self, name: str) -> str:
        """Greets name, synchronously."""
        return f"{self.greeting} {name}"

    @export
    async def async_add(self, a: int, b: int) -> int:
        return a + b

    @export
    def count_sync(self, n: int) -> Generator[int, None, None]:
        yield from range(int(n))  # numbers arrive as floats, as under upstream

    @export
    async def count_async(self, n: int) -> AsyncGenerator[int, None]:
        for i in range(int(n)):
            yield i

    @export
    def get_resets(self) -> int:
        return self.resets

    @export
    def raise_value(self) -> None:
        raise ValueError("bad value")

    @export
    async def raise_notimpl(self) -> None:
        raise NotImplementedError("not here")

    @export
    def raise_timeout(self) -> None:
        raise TimeoutError("too slow")

    @export
    def raise_other(self) -> None:
        raise RuntimeError("boom")

    @export
    async def raise_midstream(self) -> AsyncGenerator[int, None]:
        yield 1
        raise ValueError("after one")

    @export
    def crash(self) -> None:
        os._exit(7)

    @export
    def sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"

    @export
    async def nap(self, seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.naps_cancelled += 1
            raise
        return "rested"

    @export
    def get_naps_cancelled(self) -> int:
        return self.naps_cancelled

    def not_exported(self) -> str:
        return "secret"

    @exportstream
    @asynccontextmanager
    async def upper(self):
        """Sends back what it receives, in upper case, until the client's EOF."""
        tx, rx = create_memory_object_stream[bytes](8)
        out_tx, out_rx = create_memory_object_stream[bytes](8)

        async def pump() -> None:
            async with rx, out_tx:
                async for b in rx:
                    await out_tx.send(b.upper())

        from anyio import create_task_group

        async with create_task_group() as tg:
            tg.start_soon(pump)
            yield StapledObjectStream(tx, out_rx)


@dataclass(kw_only=True)
class Board(Driver):
    """A board that creates its own children, as upstream's Dutlink does."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.children["power"] = MockPower()
        self.children["console"] = EchoNetwork()
        self.children["power"].children["meter"] = Kinds(greeting="meter")

    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_composite.client.CompositeClient"

    @export
    def name_of_board(self) -> str:
        return self.name


@dataclass(kw_only=True)
class Sink(Driver):
    """Reads an upload and answers with its size and sha256."""

    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_composite.client.CompositeClient"

    @export
    async def digest(self, src: str) -> str:
        import hashlib

        h, n = hashlib.sha256(), 0
        async with self.resource(src) as res:
            async for chunk in res:
                h.update(chunk)
                n += len(chunk)
        return f"{n}:{h.hexdigest()}"


@dataclass(kw_only=True)
class Bench(Driver):
    """A test bench that drives the children its config gives it, as upstream
    drivers do: a power switch (any power driver, Go or Python), a Kinds and
    an echo network. Sync methods call them blocking, async ones await."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for child in ("power", "kinds"):
            if child not in self.children:
                raise ValueError(f"Bench: {child} driver not configured as a child")

    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_composite.client.CompositeClient"

    @export
    def sync_cycle(self) -> list:
        p = self.children["power"]
        p.on()
        on = p.state()
        p.off()
        return [on, p.state()]

    @export
    async def async_cycle(self) -> list:
        p = self.children["power"]
        await p.on()
        on = await p.state()
        await p.off()
        return [on, await p.state()]

    @export
    async def readings(self) -> int:
        return len([r async for r in self.children["power"].read()])

    @export
    def sync_readings(self) -> int:
        return len(list(self.children["power"].read()))

    @export
    def sync_greet(self, name: str) -> str:
        return self.children["kinds"].sync_hello(name=name)

    @export
    async def async_add(self, a: int, b: int) -> int:
        return await self.children["kinds"].async_add(a, b)

    @export
    async def count(self, n: int) -> list:
        return [i async for i in self.children["kinds"].count_async(n)]

    @export
    def greeting_of_kinds(self) -> str:
        return self.children["kinds"].greeting  # a config key of the child

    @export
    async def kinds_raises(self) -> None:
        await self.children["kinds"].raise_value()

    @export
    def kinds_crashes(self) -> None:
        self.children["kinds"].crash()

    @export
    async def echo(self, text: str) -> str:
        async with self.children["echo"].connect() as stream:
            await stream.send(text.encode())
            got = b""
            while len(got) < len(text):
                got += await stream.receive()
            await stream.send_eof()
            return got.decode()

    @export
    def hello(self) -> str:
        return "bench"
