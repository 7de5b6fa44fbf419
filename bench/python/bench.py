"""Python drivers under jumpwire against upstream's own exporter (docs/PERFORMANCE.md).

Run from the repository root after `make build venv`:

    .venv/bin/python bench/python/bench.py [--calls 8000] [--runs 3]

Measures, for ten upstream MockPower instances: the time from starting the
exporter to its first answer to GetReport and the total PSS of its process
tree, under upstream's exporter as an operator runs it (`jmp run
--exporter-config`, on a local listener instead of a controller), under
upstream's exporter started from its library (one process, what `jmp run`
costs at the least), under jumpwire with the zygote and under jumpwire with
an interpreter per instance (the kinds take turns, run after run);
power.on() latency through upstream's client, one exporter of each kind
serving on a unix socket at once and called in alternating rounds; and,
under jumpwire, the restart of an instance after kill -9 against its cold
start.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
    """Polls GetReport on sock (a socket's path, or HOST:PORT) until it
    answers with every driver; returns when."""
    tcp = sock.startswith("127.")
    target = sock if tcp else "unix://" + sock
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the exporter exited with {proc.returncode}")
        if tcp or os.path.exists(sock):
            try:
                with grpc.insecure_channel(target) as ch:
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


def start_jmp_run(cfg: Path) -> tuple[subprocess.Popen, str]:
    """Upstream's exporter as an operator runs it: `jmp run`, on a local
    TCP listener (it listens on no unix socket of its own choosing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("jmp")),
            "run",
            "--exporter-config",
            str(cfg),
            "--tls-grpc-listener",
            addr,
            "--tls-grpc-insecure",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, addr


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
    """Stops an exporter and waits until its whole process tree is gone, so
    that the next measurement does not share the machine with its end."""
    tree = tree_pids(proc.pid)[1:]
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    end = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{p}") for p in tree) and time.monotonic() < end:
        time.sleep(0.01)


def on_latency(
    socks: dict[str, str], calls: int, rounds: int = 8
) -> dict[str, tuple[float, float]]:
    """p50 and p99 of on() on each exporter, in ms: calls per exporter, in
    rounds that alternate between the exporters (in turn first), so that
    what else the machine does weighs on all of them alike."""
    lat: dict[str, list[float]] = {k: [] for k in socks}
    with start_blocking_portal() as portal, ExitStack() as stack:
        p0 = {}
        for k, sock in socks.items():
            client = stack.enter_context(
                portal.wrap_async_context_manager(
                    client_from_path(sock, portal, stack, allow=[], unsafe=True)
                )
            )
            p0[k] = client.children["p0"]
            for _ in range(50):
                p0[k].on()
        order = list(socks)
        for r in range(rounds):
            for k in order[r % len(order) :] + order[: r % len(order)]:
                for _ in range(calls // rounds):
                    t = time.perf_counter()
                    p0[k].on()
                    lat[k].append(time.perf_counter() - t)
    out = {}
    for k, v in lat.items():
        v.sort()
        out[k] = (statistics.median(v) * 1e3, v[int(len(v) * 0.99)] * 1e3)
    return out


def start(kind: str, tmp: Path) -> tuple[subprocess.Popen, str, dict[str, float]]:
    """Starts an exporter of kind serving ten MockPower; returns it, its
    socket, and its time to serving and PSS."""
    cfg = tmp / f"{kind}.yaml"
    cfg.write_text(config(N) if kind.startswith("jumpwire") else upstream_config(N))
    sock = str(tmp / f"{kind}.sock")
    t0 = time.monotonic()
    if kind == "upstream":
        proc, sock = start_upstream(cfg, tmp)
    elif kind == "jmp-run":
        proc, sock = start_jmp_run(cfg)
    else:
        proc = start_jw(cfg, sock, zygote=(kind == "jumpwire"))
    try:
        ready = wait_serving(sock, proc) - t0
        time.sleep(1.0)  # let start-up garbage settle before PSS
        return proc, sock, {"serving_s": ready, "pss_mib": pss_kib(proc.pid) / 1024}
    except BaseException:
        stop(proc)
        raise


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
    ap.add_argument("--calls", type=int, default=8000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default="jmp-run,upstream,jumpwire,jumpwire-no-zygote")
    a = ap.parse_args()
    kinds = a.kinds.split(",")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # Start-up and PSS: the kinds take turns, run after run.
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for _ in range(a.runs):
            for kind in kinds:
                if kind not in runs:
                    continue
                try:
                    proc, _, figures = start(kind, tmp)
                except (RuntimeError, TimeoutError) as e:
                    print(kind, "failed:", e, flush=True)
                    del runs[kind]
                    continue
                stop(proc)
                runs[kind].append(figures)
        # Latency: one exporter of each kind, called in alternating rounds;
        # but the one without the zygote (the design it replaced) and `jmp
        # run`, whose TCP listener would make it slower than the unix
        # socket of its library, the baseline.
        served = [k for k in runs if k not in ("jumpwire-no-zygote", "jmp-run")]
        procs, socks = [], {}
        try:
            for kind in served:
                proc, socks[kind], _ = start(kind, tmp)
                procs.append(proc)
            lat = on_latency(socks, a.calls) if a.calls else {}
        finally:
            for proc in procs:
                stop(proc)
        for kind, rs in runs.items():
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            if kind in lat:
                med["on_p50_ms"], med["on_p99_ms"] = lat[kind]
            print(kind, " ".join(f"{k}={v:.3f}" for k, v in med.items()), flush=True)
        rs = [restart(tmp) for _ in range(a.runs)]
        print(
            "restart",
            " ".join(f"{k}={statistics.median(r[k] for r in rs):.3f}" for k in rs[0]),
            flush=True,
        )


if __name__ == "__main__":
    main()
