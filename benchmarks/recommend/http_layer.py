"""What the HTTP layer adds to `GET /v1/recommendations`, measured so that two versions of
the code can be compared fairly on a shared machine.

    .venv/bin/python benchmarks/recommend/http_layer.py [--data DIR] [--rounds 3]
        [--reads 2000] [--src LABEL=PATH ...]

The benchmark's data (`run.py`: 50,000 items, 20,000 profiles, 1 M interactions, trained
models) is built once into `--data` and reused by later calls. Each round starts one
`polku serve` per `--src` (a `src` directory, e.g. an older commit exported with
`git archive`; default: this checkout's), in turn, and on each: a warm-up, then `/healthz`
and `/v1/recommendations` in alternating blocks of 200 requests (one at a time on a
kept-alive connection, as `run.py` does), timing each request's wall time, the server
process's CPU time per request (from /proc) and the client's (this process). The same
requests are also answered in-process once per round (`queries.recommend`, GC tuned as
`polku serve` tunes it). Printed per round and, at the end, as the median over rounds,
with the differences that the neighbours' load moves least: HTTP minus in-process (wall
p50, and the server's CPU per request minus the in-process CPU per answer).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from machine import banner  # noqa: E402

_spec = importlib.util.spec_from_file_location("recommend_run", HERE / "run.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

from polku.access.actions import create_admin_token  # noqa: E402
from polku.gctune import tune_for_throughput  # noqa: E402
from polku.recommend.tables import models  # noqa: E402
from polku.runtime import Runtime  # noqa: E402
from polku.settings import Settings  # noqa: E402
from polku.storage.engine import make_engine, writing  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
BLOCK = 200
TICKS = os.sysconf("SC_CLK_TCK")


def prepare(data: Path, rng: random.Random) -> tuple[list[str], list[str]]:
    """The benchmark's data in `data` (built on the first call); (product ids, profiles)."""
    settings = Settings.build(data_dir=str(data), pipeline="off")
    data.mkdir(parents=True, exist_ok=True)
    runtime = Runtime.open(settings)
    runtime.bootstrap()
    try:
        with runtime.engine.connect() as conn:
            trained = conn.execute(select(func.count()).select_from(models)).scalar_one()
        if not trained:
            bench.load(runtime, 50_000, 20_000, 1_000_000, rng)
            with writing(runtime.engine) as conn:
                conn.execute(text("ANALYZE main"))
            bench.train(runtime.engine, bench.WS)
    finally:
        runtime.close()
    return [f"P{n:06d}" for n in range(50_000)], [f"prof-{n:06d}" for n in range(20_000)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@contextmanager
def server(data: Path, src: Path | None, port: int) -> Iterator[tuple[str, str, int]]:
    engine = make_engine(Settings.build(data_dir=str(data), pipeline="off"))
    with writing(engine) as conn:
        token = create_admin_token(conn, bench.WS, "http-layer").token
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLKU_")}
    env.update(POLKU_DATA_DIR=str(data), POLKU_PORT=str(port), POLKU_PIPELINE="off")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    log = (data / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(PYTHON), "-c", "from polku.cli import main; main()", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((data / f"serve-{port}.log").read_text())
            time.sleep(0.1)
        yield url, token, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()


def measure_stdlib(
    url: str, token: str, pid: int, paths: list[str]
) -> dict[str, tuple[list[float], float, float]]:
    """As `measure`, with the standard library's client (`http.client`, kept alive), which
    costs the client a fraction of httpx's CPU per request."""
    auth = {"Authorization": f"Bearer {token}"}
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def get(path: str, headers: dict[str, str]) -> int:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    walls: dict[str, list[float]] = {"healthz": [], "recommend": []}
    cpu: dict[str, float] = {"healthz": 0.0, "recommend": 0.0}
    client_cpu: dict[str, float] = {"healthz": 0.0, "recommend": 0.0}
    for path in paths[:BLOCK]:
        assert get(path, auth) == 200
    for start in range(0, len(paths), BLOCK):
        block = paths[start : start + BLOCK]
        for kind in ("healthz", "recommend"):
            c0, k0 = cpu_seconds(pid), time.process_time()
            for path in block:
                t0 = time.perf_counter()
                status = get("/healthz", {}) if kind == "healthz" else get(path, auth)
                walls[kind].append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"{path}: {status}")
            cpu[kind] += cpu_seconds(pid) - c0
            client_cpu[kind] += time.process_time() - k0
    conn.close()
    return {k: (walls[k], cpu[k] / len(walls[k]), client_cpu[k] / len(walls[k])) for k in walls}


async def measure(
    url: str, token: str, pid: int, paths: list[str]
) -> dict[str, tuple[list[float], float, float]]:
    """Wall times, and the server's and the client's CPU seconds per request, of each kind
    of request, in alternating blocks."""
    auth = {"Authorization": f"Bearer {token}"}
    out: dict[str, tuple[list[float], float, float]] = {}
    walls: dict[str, list[float]] = {"healthz": [], "recommend": []}
    cpu: dict[str, float] = {"healthz": 0.0, "recommend": 0.0}
    client_cpu: dict[str, float] = {"healthz": 0.0, "recommend": 0.0}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for path in paths[:BLOCK]:  # warm-up: loads the bundle, fills the caches
            (await client.get(path, headers=auth)).raise_for_status()
        for start in range(0, len(paths), BLOCK):
            block = paths[start : start + BLOCK]
            for kind in ("healthz", "recommend"):
                c0, k0 = cpu_seconds(pid), time.process_time()
                for path in block:
                    t0 = time.perf_counter()
                    if kind == "healthz":
                        response = await client.get("/healthz")
                    else:
                        response = await client.get(path, headers=auth)
                    walls[kind].append(time.perf_counter() - t0)
                    if response.status_code != 200:
                        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
                cpu[kind] += cpu_seconds(pid) - c0
                client_cpu[kind] += time.process_time() - k0
    for kind in walls:
        n = len(walls[kind])
        out[kind] = (walls[kind], cpu[kind] / n, client_cpu[kind] / n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("/tmp/polku-recommend-bench"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--src", action="append", default=[], help="LABEL=PATH to a src dir")
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--client", choices=("httpx", "stdlib"), default="httpx")
    parser.add_argument(
        "--pace",
        type=float,
        default=3.0,
        help="ms of sleep between the in-process answers of the paced run (as between "
        "HTTP requests)",
    )
    args = parser.parse_args()
    print(banner("recommendations: the HTTP layer"))
    print(f"client: {args.client}; in-process paced run: {args.pace} ms between answers")
    rng = random.Random(17)
    ids, people = prepare(args.data, rng)
    requests = bench.asks(ids, people, args.reads, rng)
    paths = [bench.path_of(a) for a in requests]
    sources: list[tuple[str, Path | None]] = [
        (label, Path(path).resolve()) for label, path in (s.split("=", 1) for s in args.src)
    ] or [("checkout", None)]
    settings = Settings.build(data_dir=str(args.data), pipeline="off")
    runtime = Runtime.open(settings)
    bench.in_process(runtime, requests[:200])  # warm-up
    tune_for_throughput()
    rows: dict[str, list[dict[str, float]]] = {label: [] for label, _ in sources}
    try:
        for n in range(args.rounds):
            local_cpu: list[float] = []
            local = bench.in_process(runtime, requests, local_cpu)
            paced_cpu: list[float] = []
            for ask in requests[:500]:
                time.sleep(args.pace / 1000)
                bench.in_process(runtime, [ask], paced_cpu)
            order = sources if n % 2 == 0 else sources[::-1]
            for label, src in order:
                with server(args.data, src, args.port) as (url, token, pid):
                    if args.client == "stdlib":
                        got = measure_stdlib(url, token, pid, paths)
                    else:
                        got = asyncio.run(measure(url, token, pid, paths))
                (hw, hc, hk), (rw, rc, rk) = got["healthz"], got["recommend"]
                row = {
                    "load": os.getloadavg()[0],
                    "local50": bench.pct(local, 0.5),
                    "local99": bench.pct(local, 0.99),
                    "localcpu": statistics.fmean(local_cpu),
                    "pacedcpu": statistics.fmean(paced_cpu),
                    "h50": bench.pct(hw, 0.5),
                    "h99": bench.pct(hw, 0.99),
                    "hcpu": hc,
                    "r50": bench.pct(rw, 0.5),
                    "r99": bench.pct(rw, 0.99),
                    "rcpu": rc,
                    "hclient": hk,
                    "rclient": rk,
                }
                rows[label].append(row)
                print(f"round {n + 1} {label:>10}: {fmt(row)}", flush=True)
    finally:
        runtime.close()
    print("\nmedians over the rounds (ms):")
    for label, got_rows in rows.items():
        median = {k: statistics.median(r[k] for r in got_rows) for k in got_rows[0]}
        print(f"{label:>10}: {fmt(median)}")


def fmt(row: dict[str, Any]) -> str:
    m = {k: v * 1000 for k, v in row.items() if k != "load"}
    return (
        f"load {row['load']:.1f} | in-process p50/p99 {m['local50']:.2f}/{m['local99']:.2f}"
        f" cpu {m['localcpu']:.2f} (paced {m['pacedcpu']:.2f})"
        f" | /healthz p50/p99 {m['h50']:.2f}/{m['h99']:.2f}"
        f" cpu {m['hcpu']:.2f} | recommend p50/p99 {m['r50']:.2f}/{m['r99']:.2f}"
        f" cpu {m['rcpu']:.2f} | HTTP-in-process p50 {m['r50'] - m['local50']:.2f}"
        f" | server cpu over in-process {m['rcpu'] - m['localcpu']:.2f}"
        f" | client cpu /healthz {m['hclient']:.2f} recommend {m['rclient']:.2f}"
    )


if __name__ == "__main__":
    main()
