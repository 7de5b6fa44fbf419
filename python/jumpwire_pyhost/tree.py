"""One hosted driver instance: the upstream driver built from its config, the
children it created itself, and the resources uploaded to them."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import pydantic
from jumpstarter.driver import Driver

from jumpwire_pyhost import CHILDREN_LABEL
from jumpwire_pyhost.catalog import class_doc, client_of, exported_methods, import_driver
from jumpwire_pyhost.children import ChildProxy, build_children
from jumpwire_pyhost.pb import plugin_pb2 as pb

log = logging.getLogger("pyhost")

# How long a call that names an uploaded resource waits for the exporter to
# open the resource's stream.
RESOURCE_WAIT = 30.0


class ResourceTable(dict[UUID, Any]):
    """The resources uploaded to this process, shared by every driver in it.

    Upstream's Driver.resource() looks a client stream up with
    ``self.resources[uuid]`` and enters it with ``async with``. Under jumpwire
    the exporter opens the resource's Stream in parallel with the call that
    names it, so a lookup that comes first gets a stand-in that waits for the
    stream to arrive."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived: dict[UUID, anyio.Event] = {}

    def add(self, uuid: UUID, stream: Any) -> None:
        self[uuid] = stream
        ev = self._arrived.pop(uuid, None)
        if ev is not None:
            ev.set()

    def __missing__(self, uuid: UUID) -> Any:
        return _Pending(self, uuid)

    def __delitem__(self, uuid: UUID) -> None:
        self.pop(uuid, None)

    def event(self, uuid: UUID) -> anyio.Event:
        ev = self._arrived.get(uuid)
        if ev is None:
            ev = self._arrived[uuid] = anyio.Event()
        return ev


@dataclass
class _Pending:
    table: ResourceTable
    uuid: UUID

    async def __aenter__(self) -> Any:
        if self.uuid not in self.table:
            with anyio.move_on_after(RESOURCE_WAIT):
                await self.table.event(self.uuid).wait()
        stream = dict.get(self.table, self.uuid)
        if stream is None:
            self.table._arrived.pop(self.uuid, None)
            raise ValueError(f"resource {self.uuid} was never uploaded to this driver")
        self._stream = stream
        return await stream.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._stream.__aexit__(*exc)


class ConfigError(Exception):
    """The driver refused its config; problems say where and why."""

    def __init__(self, problems: list[pb.ConfigProblem]) -> None:
        super().__init__("; ".join(f"{p.key}: {p.message}" if p.key else p.message for p in problems))
        self.problems = problems


def _problems(e: BaseException) -> list[pb.ConfigProblem]:
    if isinstance(e, pydantic.ValidationError):
        out = []
        for err in e.errors():
            loc = [str(x) for x in err.get("loc", ()) if x not in ("__init__",)]
            key = ".".join(loc)
            msg = err.get("msg", "invalid")
            if err.get("type") == "missing":
                msg = "required, missing"
            elif err.get("type") == "unexpected_keyword_argument":
                msg = "unknown key"
            out.append(pb.ConfigProblem(key=key, message=msg))
        return out
    if isinstance(e, TypeError):
        msg = str(e)
        if "unexpected keyword argument" in msg:
            return [pb.ConfigProblem(key=k, message="unknown key") for k in re.findall(r"'([^']+)'", msg)[-1:]]
        if " missing " in msg and "required" in msg:
            _, _, names = msg.partition(":")
            return [pb.ConfigProblem(key=k, message="required, missing") for k in re.findall(r"'([^']+)'", names)]
    return [pb.ConfigProblem(message=f"the driver refused its config: {type(e).__name__}: {e}")]


@dataclass
class Child:
    """A driver the configured driver created itself (a Dutlink's power, a
    Qemu's console). The exporter adds it to the tree under the instance, at
    the instance's path plus path, and routes its calls to this process with
    the jumpwire-instance metadata."""

    path: str  # dotted path relative to the configured instance
    name: str
    client: str
    description: str
    methods: list[pb.Method]
    labels: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        kinds = {
            pb.METHOD_KIND_UNARY: "unary",
            pb.METHOD_KIND_STREAMING: "streaming",
            pb.METHOD_KIND_BYTE_STREAM: "stream",
        }
        return {
            "path": self.path,
            "name": self.name,
            "client": self.client,
            "description": self.description,
            "labels": self.labels,
            "methods": [
                {"name": m.name, "kind": kinds.get(m.kind, "unary"), "description": m.description} for m in self.methods
            ],
        }


class Instance:
    """The driver instance this process hosts, with the drivers under it."""

    def __init__(
        self,
        type_path: str,
        config: dict[str, Any],
        name: str,
        path: str,
        children: list[pb.Child] | None = None,
        children_socket: str = "",
    ) -> None:
        cls = import_driver(type_path)
        if dataclasses.is_dataclass(cls):
            known = {f.name for f in dataclasses.fields(cls) if f.init}
            if unknown := sorted(set(config) - known):
                # Upstream's pydantic drivers ignore unknown keys; so does
                # jumpwire, for files written for upstream to load unchanged.
                log.warning("config keys the driver ignores", extra={"type": type_path, "keys": ", ".join(unknown)})
        if children:
            # As upstream's exporter builds a driver: with its configured
            # children, which here stand for processes of their own.
            config = {**config, "children": build_children(children, children_socket)}
        try:
            root = cls(**config)
        except Exception as e:
            raise ConfigError(_problems(e)) from e
        self.type_path = type_path
        self.name = name
        self.path = path
        self.root = root
        self.resources = ResourceTable()
        self.drivers: dict[str, Driver] = {}
        self.children: list[Child] = []
        self._index(root, "", name)

    def _index(self, driver: Driver, rel: str, name: str) -> None:
        self.drivers[rel] = driver
        driver.resources = self.resources  # one table: any driver in the process may read an upload
        driver.labels = {**driver.labels, "jumpstarter.dev/name": name}
        for cname, child in driver.children.items():
            if isinstance(child, ChildProxy):
                continue  # a configured child: in the tree already, served by its own process
            crel = f"{rel}.{cname}" if rel else cname
            self.children.append(
                Child(
                    path=crel,
                    name=cname,
                    client=client_of(type(child)),
                    description=child.description or class_doc(type(child)),
                    methods=exported_methods(child),
                    labels={k: v for k, v in child.extra_labels().items()},
                )
            )
            self._index(child, crel, cname)  # parents before their children

    def configure_response(self) -> pb.ConfigureResponse:
        labels = {k: str(v) for k, v in self.root.extra_labels().items()}
        if self.children:
            labels[CHILDREN_LABEL] = json.dumps([c.to_json() for c in self.children], separators=(",", ":"))
        return pb.ConfigureResponse(
            description=self.root.description or class_doc(type(self.root)),
            methods=exported_methods(self.root),
            labels=labels,
        )

    def driver(self, rel: str) -> Driver | None:
        return self.drivers.get(rel)

    @asynccontextmanager
    async def resource(self, uuid: UUID) -> AsyncIterator[Any]:
        """Registers an upload: yields the exporter's end of a memory stream
        whose other end a driver reads with self.resource(handle)."""
        from jumpstarter.streams.common import create_memory_stream

        remote, local = create_memory_stream()
        self.resources.add(uuid, local)
        try:
            async with remote:
                yield remote
        finally:
            # A resource no call ever took is dropped with its stream.
            stale = dict.get(self.resources, uuid)
            if stale is local:
                del self.resources[uuid]
