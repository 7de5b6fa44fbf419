"""Python drivers under jumpwire against upstream's own exporter (docs/PERFORMANCE.md).

Run from the repository root after `make build venv`:

    .venv/bin/python bench/python/bench.py [--calls 2000] [--runs 3]

Measures, for ten upstream MockPower instances: the time from starting the
exporter to its first answer to GetReport and the total PSS of its process
tree, under upstream's exporter (one process), jumpwire with the zygote and
jumpwire with an interpreter per instance; power.on() latency through
upstream's client; and, under jumpwire, the restart of an instance after
kill -9 against its cold start.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path

import grpc
from anyio.from_thread import start_blocking_portal
from google.protobuf import empty_pb2
from jumpstarter.client.client import client_from_path
from jumpstarter_protocol import jumpstarter_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
JW = ROOT / "bin" / "jw"
N = 10


def config(n: int) -> str:
    drivers = "".join(
        f"  p{i}:\n    type: jumpstarter_driver_power.driver.MockPower\n    plugin: python\n"
        for i in range(n)
    )
    return (
        textwrap.dedent("""\
        apiVersion: jumpstarter.dev/v1alpha1
        kind: ExporterConfig
        metadata: {namespace: bench, name: pybench}
        endpoint: ""
        token: ""
        export:
        """)
        + drivers
    )


def upstream_config(n: int) -> str:
    # Upstream does not know jumpwire's `plugin:` key.
    return config(n).replace("    plugin: python\n", "")


def tree_pids(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = [pid], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pss_kib(pid: int) -> int:
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_serving(sock: str, proc: subprocess.Popen, deadline: float = 120.0) -> float:
    """Polls GetReport on sock until it answers with every driver; returns when."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the exporter exited with {proc.returncode}")
        if os.path.exists(sock):
            try:
                with grpc.insecure_channel("unix://" + sock) as ch:
                    r = jumpstarter_pb2_grpc.ExporterServiceStub(ch).GetReport(
                        empty_pb2.Empty(), timeout=5
                    )
                    if len(r.reports) > N:
                        return time.monotonic()
            except grpc.RpcError:
                pass
        time.sleep(0.005)
    raise TimeoutError("the exporter did not serve")


def start_upstream(cfg: Path, sock_dir: Path) -> tuple[subprocess.Popen, str]:
    code = textwrap.dedent(f"""\
        import time
        from pathlib import Path
        from jumpstarter.config.exporter import ExporterConfigV1Alpha1
        cfg = ExporterConfigV1Alpha1.load_path(Path({str(cfg)!r}))
        with cfg.serve_unix() as path:
            print(path, flush=True)
            time.sleep(3600)
        """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=sock_dir
    )
    sock = proc.stdout.readline().strip()
    return proc, sock


def start_jw(cfg: Path, sock: str, zygote: bool) -> subprocess.Popen:
    env = dict(os.environ, JUMPWIRE_PLUGIN_PATH="")
    if not zygote:
        env["JUMPWIRE_PYTHON_NO_ZYGOTE"] = "1"
    return subprocess.Popen(
        [
            str(JW),
            "run",
            "-c",
            str(cfg),
            "--python",
            sys.executable,
            "--listen",
            "unix://" + sock,
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def on_latency(sock: str, calls: int) -> tuple[float, float]:
    with (
        start_blocking_portal() as portal,
        ExitStack() as stack,
        portal.wrap_async_context_manager(
            client_from_path(sock, portal, stack, allow=[], unsafe=True)
        ) as client,
    ):
        p0 = client.children["p0"]
        for _ in range(50):
            p0.on()
        lat = []
        for _ in range(calls):
            t = time.perf_counter()
            p0.on()
            lat.append(time.perf_counter() - t)
    lat.sort()
    return statistics.median(lat) * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def measure(kind: str, tmp: Path, calls: int) -> dict[str, float]:
    cfg = tmp / f"{kind}.yaml"
    cfg.write_text(upstream_config(N) if kind == "upstream" else config(N))
    sock = str(tmp / f"{kind}.sock")
    t0 = time.monotonic()
    if kind == "upstream":
        proc, sock = start_upstream(cfg, tmp)
    else:
        proc = start_jw(cfg, sock, zygote=(kind == "jumpwire"))
    try:
        ready = wait_serving(sock, proc) - t0
        time.sleep(1.0)  # let start-up garbage settle before PSS
        out = {"serving_s": ready, "pss_mib": pss_kib(proc.pid) / 1024}
        if calls:
            out["on_p50_ms"], out["on_p99_ms"] = on_latency(sock, calls)
        return out
    finally:
        stop(proc)


def restart(tmp: Path) -> dict[str, float]:
    """Cold start of one instance against its restart after kill -9."""
    cfg = tmp / "one.yaml"
    cfg.write_text(config(1))
    sock = str(tmp / "one.sock")
    t0 = time.monotonic()
    proc = start_jw(cfg, sock, zygote=True)
    global N
    n, N = N, 0
    try:
        cold = wait_serving(sock, proc) - t0
        with grpc.insecure_channel("unix://" + sock) as ch:
            stub = jumpstarter_pb2_grpc.ExporterServiceStub(ch)
            rep = stub.GetReport(empty_pb2.Empty(), timeout=5)
            d = next(
                r for r in rep.reports if r.labels.get("jumpstarter.dev/name") == "p0"
            )
            pid = int(d.labels["jumpwire.dev/pid"])
            from jumpstarter_protocol import jumpstarter_pb2

            t1 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            while True:  # calls wait for the restart
                try:
                    stub.DriverCall(
                        jumpstarter_pb2.DriverCallRequest(uuid=d.uuid, method="on"),
                        timeout=30,
                    )
                    break
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
            again = time.monotonic() - t1
        return {"cold_s": cold, "restart_s": again}
    finally:
        N = n
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default="upstream,jumpwire,jumpwire-no-zygote")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for kind in a.kinds.split(","):
            try:
                runs = [
                    measure(
                        kind,
                        tmp,
                        a.calls if i == 0 and kind != "jumpwire-no-zygote" else 0,
                    )
                    for i in range(a.runs)
                ]
            except (RuntimeError, TimeoutError) as e:
                print(kind, "failed:", e, flush=True)
                continue
            med = {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0]}
            print(kind, " ".join(f"{k}={v:.3f}" for k, v in med.items()), flush=True)
        rs = [restart(tmp) for _ in range(a.runs)]
        print(
            "restart",
            " ".join(f"{k}={statistics.median(r[k] for r in rs):.3f}" for k in rs[0]),
            flush=True,
        )


if __name__ == "__main__":
    main()
