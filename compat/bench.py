"""Upstream Jumpstarter's Python client against jumpwire and against
upstream's own exporter, same driver config, alternating rounds in one run:
power.on() latency, the latency of a power.read() stream, and the
throughput of an upload into a sink driver.

    .venv/bin/python compat/bench.py --jw bin/jw --plugins DIR [--calls 2000] [--upload-mib 1024]

DIR holds jumpwire-driver-power and jumpwire-driver-sink (make build puts the
first in bin/plugins; go build -o DIR/jumpwire-driver-sink
./internal/testplugins/sink). Inside an exporter's shell, `bench.py measure`
does one round and prints its figures as JSON.
"""

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def measure(calls: int, reads: int, upload: Path | None) -> dict[str, Any]:
    from jumpstarter.utils.env import env

    out: dict[str, Any] = {}
    with env() as client:
        client.power.on()  # warm up: the first call pays for connections
        on = []
        for _ in range(calls):
            t = time.perf_counter()
            client.power.on()
            on.append(time.perf_counter() - t)
        read = []
        for _ in range(reads):
            t = time.perf_counter()
            for _ in client.power.read():
                pass
            read.append(time.perf_counter() - t)
        out["on"], out["read"] = on, read
        if upload is not None:
            t = time.perf_counter()
            result = client.sink.flash(str(upload))
            out["upload_s"] = time.perf_counter() - t
            out["upload_bytes"] = result["size"]
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def run(args: argparse.Namespace) -> None:
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = f"{venv_bin}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(HERE)
    env["JUMPWIRE_PLUGIN_PATH"] = args.plugins
    exporters = {
        "jumpwire": [
            args.jw,
            "shell",
            "-c",
            str(HERE / "testdata" / "bench-jumpwire.yaml"),
            "--",
        ],
        "upstream": [
            str(venv_bin / "jmp"),
            "shell",
            "--exporter-config",
            str(HERE / "testdata" / "bench-upstream.yaml"),
            "--",
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        image = None
        if args.upload_mib:
            image = Path(tmp) / "image.bin"
            block = os.urandom(1 << 20)
            with image.open("wb") as f:
                for i in range(args.upload_mib):
                    f.write(hashlib.sha256(block + i.to_bytes(4)).digest() * (1 << 15))
        results: dict[str, dict[str, list[float]]] = {
            k: {"on": [], "read": [], "upload": []} for k in exporters
        }
        per_round = max(1, args.calls // args.rounds)
        for r in range(args.rounds):
            for name, argv in exporters.items():
                out = Path(tmp) / f"{name}-{r}.json"
                cmd = [
                    *argv,
                    sys.executable,
                    __file__,
                    "measure",
                    "--calls",
                    str(per_round),
                    "--reads",
                    str(max(1, args.reads // args.rounds)),
                    "--out",
                    str(out),
                ]
                if image is not None and r == 0:
                    cmd += ["--upload", str(image)]
                subprocess.run(
                    cmd,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                got = json.loads(out.read_text())
                results[name]["on"] += got["on"]
                results[name]["read"] += got["read"]
                if "upload_s" in got:
                    results[name]["upload"].append(
                        got["upload_bytes"] / got["upload_s"] / (1 << 20)
                    )
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}"
    )
    for metric, label in (("on", "power.on()"), ("read", "power.read() stream")):
        row = {}
        for name in exporters:
            xs = results[name][metric]
            row[name] = (pct(xs, 50) * 1e3, pct(xs, 99) * 1e3, len(xs))
        jw, up = row["jumpwire"], row["upstream"]
        print(
            f"{label}: jumpwire p50 {jw[0]:.2f} ms p99 {jw[1]:.2f} ms; upstream p50 {up[0]:.2f} ms p99 {up[1]:.2f} ms "
            f"({jw[2]} each); ratio p50 {jw[0] / up[0]:.2f}x p99 {jw[1] / up[1]:.2f}x"
        )
    if args.upload_mib:
        jw_t, up_t = (
            statistics.mean(results["jumpwire"]["upload"]),
            statistics.mean(results["upstream"]["upload"]),
        )
        print(
            f"upload of {args.upload_mib} MiB: jumpwire {jw_t:.0f} MiB/s, upstream {up_t:.0f} MiB/s, ratio {jw_t / up_t:.2f}x"
        )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd")
    m = sub.add_parser("measure")
    m.add_argument("--calls", type=int, default=500)
    m.add_argument("--reads", type=int, default=50)
    m.add_argument("--upload", type=Path)
    m.add_argument("--out", type=Path, required=True)
    p.add_argument("--jw", default="bin/jw")
    p.add_argument("--plugins", default="bin/plugins")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--reads", type=int, default=200)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--upload-mib", type=int, default=1024)
    args = p.parse_args()
    if args.cmd == "measure":
        args.out.write_text(json.dumps(measure(args.calls, args.reads, args.upload)))
    else:
        run(args)


if __name__ == "__main__":
    main()
