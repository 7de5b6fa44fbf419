"""jumpwire-pyhost: run one upstream driver instance as a jumpwire plugin.

python -m jumpwire_pyhost serve TYPE      serve one instance (run by the exporter)
python -m jumpwire_pyhost zygote          a pre-imported parent that forks instances
python -m jumpwire_pyhost inspect TYPE... describe driver classes as JSON
python -m jumpwire_pyhost list            the driver classes installed packages announce
"""

from __future__ import annotations

import argparse
import json
import sys

from google.protobuf import json_format

import jumpwire_pyhost


def _inspect(paths: list[str]) -> int:
    from jumpwire_pyhost.catalog import TypeNotFound, describe_type, distribution_of

    out = []
    status = 0
    for path in paths:
        entry: dict[str, object] = {"type": path}
        try:
            t = describe_type(path)
            d = distribution_of(path)
            entry.update(
                package=d.name,
                version=d.version,
                sha256=d.sha256,
                record=d.record,
                source=source_of(path),
                driver=json_format.MessageToDict(t, preserving_proto_field_name=True),
            )
        except TypeNotFound as e:
            entry["error"] = str(e)
            status = 2
        out.append(entry)
    head = {"pyhost": jumpwire_pyhost.__version__, "python": sys.version.split()[0], "executable": sys.executable}
    json.dump({**head, "types": out}, sys.stdout)
    sys.stdout.write("\n")
    return status


def source_of(path: str) -> str:
    """The file of the module defining the class at path."""
    import inspect

    from jumpwire_pyhost.catalog import import_driver

    try:
        return inspect.getsourcefile(import_driver(path)) or ""
    except (TypeError, OSError):
        return ""


def _list() -> int:
    from jumpwire_pyhost.catalog import entry_point_types

    return _inspect(entry_point_types())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jumpwire-pyhost", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action="version", version=f"jumpwire-pyhost {jumpwire_pyhost.__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve one driver instance (the exporter runs this)")
    s.add_argument("type", help="import path of the driver class, e.g. jumpstarter_driver_shell.driver.Shell")
    z = sub.add_parser("zygote", help="pre-import and fork instances on request (the exporter runs this)")
    z.add_argument("--preload", action="append", default=[], help="driver class to import before forking")
    i = sub.add_parser("inspect", help="describe driver classes as JSON")
    i.add_argument("types", nargs="+")
    sub.add_parser("list", help="describe the driver classes installed packages announce")
    a = p.parse_args(argv)
    if a.cmd == "serve":
        from jumpwire_pyhost.serve import run

        return run(a.type)
    if a.cmd == "zygote":
        from jumpwire_pyhost.zygote import run_zygote

        return run_zygote(a.preload)
    if a.cmd == "inspect":
        return _inspect(a.types)
    return _list()


if __name__ == "__main__":
    sys.exit(main())
