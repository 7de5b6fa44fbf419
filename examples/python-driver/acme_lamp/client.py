"""The client side: what a test engineer calls, through upstream's client."""

from __future__ import annotations

from collections.abc import Generator

from jumpstarter.client import DriverClient


class LampClient(DriverClient):
    def on(self) -> None:
        """Switch the lamp fully on."""
        self.call("on")

    def off(self) -> None:
        """Switch the lamp off."""
        self.call("off")

    def dim(self, percent: int) -> int:
        """Set the brightness; returns the watts drawn."""
        return int(self.call("dim", percent))

    def state(self) -> int:
        return int(self.call("state"))

    def watch(self, count: int) -> Generator[int, None, None]:
        for v in self.streamingcall("watch", count):
            yield int(v)

    def ask(self, line: str) -> str:
        """Send one line to the lamp's console and read its answer."""
        with self.stream("console") as s:
            s.send(line.encode() + b"\n")
            return s.receive().decode()
