"""What the Python environment provides: driver classes, their methods, and the
installed distribution each comes from (name, version, content hash)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata as md
import inspect
import os
import types
import typing
from dataclasses import dataclass
from typing import Any

from jumpstarter.common.serde import encode_value
from jumpstarter.driver import Driver
from jumpstarter.driver.decorators import (
    MARKER_DRIVERCALL,
    MARKER_MAGIC,
    MARKER_STREAMCALL,
    MARKER_STREAMING_DRIVERCALL,
)

from jumpwire_pyhost.pb import plugin_pb2 as pb

# The config keys every upstream driver accepts from its base class; the
# exporter handles description and children itself.
_BASE_FIELDS = {f.name for f in dataclasses.fields(Driver)}

ENTRY_POINT_GROUP = "jumpstarter.drivers"


class TypeNotFound(Exception):
    """The named class cannot be imported or is no upstream driver."""


def import_driver(path: str) -> type[Driver]:
    """Imports the driver class at path ("package.module.Class")."""
    module_path, _, name = path.rpartition(".")
    if not module_path:
        raise TypeNotFound(f"{path!r} is not an import path of a driver class (expected package.module.Class)")
    try:
        module = __import__(module_path, fromlist=[name])
    except ModuleNotFoundError as e:
        missing = e.name or module_path
        raise TypeNotFound(f"no module named {missing!r}{install_hint(path)}") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise TypeNotFound(f"module {module_path!r} has no class {name!r}")
    if not (inspect.isclass(cls) and issubclass(cls, Driver)):
        raise TypeNotFound(f"{path} is not a jumpstarter driver class (a subclass of jumpstarter.driver.Driver)")
    return cls


def install_hint(path: str) -> str:
    """Says which pip install provides a module path, where the name tells."""
    top = path.split(".")[0]
    if top.startswith("jumpstarter_driver_"):
        return f": pip install {top.replace('_', '-')}"
    return ""


def method_kind(fn: Any) -> int | None:
    """The kind of an exported method, or None when it is not exported."""
    if getattr(fn, MARKER_DRIVERCALL, None) == MARKER_MAGIC:
        return pb.METHOD_KIND_UNARY
    if getattr(fn, MARKER_STREAMING_DRIVERCALL, None) == MARKER_MAGIC:
        return pb.METHOD_KIND_STREAMING
    if getattr(fn, MARKER_STREAMCALL, None) == MARKER_MAGIC:
        return pb.METHOD_KIND_BYTE_STREAM
    return None


def json_type(annotation: Any) -> str:
    """The JSON type of a Python annotation, as the Go SDK names them."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    if isinstance(annotation, str):
        return _named_json_type(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return json_type(args[0]) if len(args) == 1 else "any"
    if origin is not None:
        annotation = origin
    if annotation is type(None):
        return "null"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is str:
        return "string"
    if annotation is bytes:
        return "bytes"
    if inspect.isclass(annotation):
        if issubclass(annotation, list | tuple | set | frozenset):
            return "array"
        if issubclass(annotation, dict):
            return "object"
        if annotation.__name__ == "UUID":
            return "string"
    return "any"


def _named_json_type(name: str) -> str:
    # Annotations of modules with `from __future__ import annotations` that
    # could not be resolved stay strings.
    base = name.split("[")[0].strip()
    return {
        "bool": "boolean",
        "int": "integer",
        "float": "number",
        "str": "string",
        "bytes": "bytes",
        "list": "array",
        "tuple": "array",
        "dict": "object",
        "None": "null",
    }.get(base, "any")


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}


def describe_method(name: str, fn: Any, kind: int) -> pb.Method:
    """Describes one exported method from its signature and docstring."""
    m = pb.Method(name=name, kind=kind, description=first_line(inspect.getdoc(fn)))
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return m
    hints = _hints(fn)
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind == p.VAR_KEYWORD:
            continue
        typ = json_type(hints.get(p.name, p.annotation))
        m.params.append(typ)
        info = pb.Param(name=p.name, type=typ)
        if p.default is not p.empty:
            try:
                info.default.CopyFrom(encode_value(p.default))
            except Exception:  # noqa: BLE001 - a default JSON cannot say is left out
                pass
        m.param_info.append(info)
        if p.kind == p.VAR_POSITIONAL:
            m.variadic = True
    if kind != pb.METHOD_KIND_BYTE_STREAM:
        ret = hints.get("return", sig.return_annotation)
        if kind == pb.METHOD_KIND_STREAMING:
            args = typing.get_args(ret)
            ret = args[0] if args else inspect.Parameter.empty
        m.result = json_type(ret)
    return m


def exported_methods(obj: Any) -> list[pb.Method]:
    """The @export and @exportstream methods of a driver class or instance, by name."""
    return list(_class_methods(obj if inspect.isclass(obj) else type(obj)))


@functools.cache
def _class_methods(cls: type) -> tuple[pb.Method, ...]:
    # Worked out once per class (inspect.signature is slow): the zygote's
    # answer for the classes it preloads is every instance's. The markers
    # are on the class's functions, so its instances export the same.
    methods = []
    for name in sorted(dir(cls)):
        if name.startswith("__"):
            continue
        fn = inspect.getattr_static(cls, name, None)
        if isinstance(fn, staticmethod | classmethod):
            fn = fn.__func__
        kind = method_kind(fn)
        if kind is not None:
            methods.append(describe_method(name, fn, kind))
    return tuple(methods)


def first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ").strip()


def class_doc(cls: type) -> str:
    """The first paragraph of a class's own docstring; not the signature that
    dataclasses write into a class without one."""
    doc = cls.__dict__.get("__doc__")
    if not doc or doc.startswith(cls.__name__ + "("):
        return ""
    return first_line(inspect.cleandoc(doc))


def client_of(cls: type[Driver]) -> str:
    """The client class a Jumpstarter client loads for the driver, or ""."""
    try:
        return str(cls.client())
    except Exception:
        return ""


def config_keys(cls: type[Driver]) -> list[pb.ConfigKey]:
    """The driver's own config keys: its dataclass fields that are set at init."""
    keys = []
    if not dataclasses.is_dataclass(cls):
        return keys
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in _BASE_FIELDS or f.name.startswith("_"):
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        keys.append(
            pb.ConfigKey(
                name=f.name,
                type=json_type(hints.get(f.name, f.type)),
                description="required" if required else "",
            )
        )
    return keys


@functools.cache
def describe_type(path: str) -> pb.DriverType:
    """Describes the driver class at path for the catalog."""
    cls = import_driver(path)
    return pb.DriverType(
        name=path,
        client=client_of(cls),
        description=class_doc(cls),
        methods=exported_methods(cls),
        config=config_keys(cls),
    )


@dataclass
class Distribution:
    """The installed distribution a driver class comes from."""

    name: str = ""
    version: str = ""
    sha256: str = ""
    # record is the path of the distribution's RECORD file: pip rewrites it
    # whenever it installs another version, so the exporter can tell from its
    # stat whether what it learned is still true.
    record: str = ""


@functools.cache
def _distribution(top: str) -> md.Distribution | None:
    """The installed distribution that provides the top-level module top.

    Most distributions are named after their module (jumpstarter_driver_shell
    comes from jumpstarter-driver-shell): that one is found by name, which is
    quick, when its files hold the module. Otherwise every installed
    distribution is read (importlib.metadata.packages_distributions), which
    takes hundreds of milliseconds in a large environment."""
    try:
        dist = md.distribution(top)
    except md.PackageNotFoundError:
        dist = None
    if dist is not None and any(f.parts and f.parts[0] in (top, top + ".py") for f in dist.files or ()):
        return dist
    names = md.packages_distributions().get(top, [])
    return md.distribution(names[0]) if names else None


@functools.cache
def version_of(path: str) -> str:
    """The version of the installed distribution providing the class at path
    ("" if none does): what Describe answers, without distribution_of's hash."""
    dist = _distribution(path.split(".")[0])
    return dist.version if dist is not None else ""


@functools.cache
def distribution_of(path: str) -> Distribution:
    """Finds the installed distribution that provides the module of path."""
    top = path.split(".")[0]
    dist = _distribution(top)
    if dist is None:
        return Distribution()
    record = dist.locate_file(f"{dist._path.name}/RECORD") if hasattr(dist, "_path") else ""
    return Distribution(
        name=dist.metadata["Name"] or top,
        version=dist.version,
        sha256=content_hash(dist),
        record=str(record) if record and os.path.exists(str(record)) else "",
    )


def content_hash(dist: md.Distribution) -> str:
    """The sha256 of an installed distribution's files: the hash of its RECORD
    entries that carry a hash (every file pip installed from the wheel), in a
    fixed order, so the same wheel installed anywhere has the same hash."""
    h = hashlib.sha256()
    for f in sorted(dist.files or [], key=lambda f: str(f)):
        if f.hash is None:
            continue
        h.update(f"{f}\0{f.hash.mode}={f.hash.value}\n".encode())
    return h.hexdigest()


def entry_point_types() -> list[str]:
    """The driver classes installed distributions announce (entry point group
    jumpstarter.drivers), as import paths."""
    paths = set()
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        module, _, attr = ep.value.partition(":")
        if attr:
            paths.add(f"{module}.{attr}")
    return sorted(paths)
