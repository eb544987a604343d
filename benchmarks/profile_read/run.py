"""Profile read benchmark: p50/p99 of GET /v1/profiles/{id} on a populated embedded Polku,
next to the same run's p50/p99 of GET /health (the HTTP stack and two tiny reads).

    .venv/bin/python benchmarks/profile_read/run.py [--events 100000] [--reads 3000]

Budget (../shared/ARCHITECTURE.md): profile read p99 within 3 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from machine import banner
from run import BATCH, Server, closed_loop, make_bodies, pct, wait_drained


async def timed_gets(url: str, paths: list[str], headers: dict[str, str]) -> list[float]:
    """One request at a time (latency, not throughput), over one kept-alive connection."""
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for path in paths:
            t0 = time.perf_counter()
            r = await client.get(path)
            out.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=3000)
    args = parser.parse_args()
    print(banner("profile read benchmark"))
    bodies = make_bodies(args.events // BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            asyncio.run(closed_loop(server, bodies, 8, 600))
            wait_drained(server)
            headers = {"Authorization": f"Bearer {server.admin}"}
            found = httpx.get(
                f"{server.url}/v1/profiles", params={"limit": 100}, headers=headers
            ).json()["profiles"]
            ids = [p["profile_id"] for p in found]
            rng = random.Random(5)
            paths = [f"/v1/profiles/{rng.choice(ids)}" for _ in range(args.reads)]
            asyncio.run(timed_gets(server.url, paths[:200], headers))  # warm-up
            health = asyncio.run(timed_gets(server.url, ["/health"] * args.reads, {}))
            reads = asyncio.run(timed_gets(server.url, paths, headers))
        finally:
            server.stop()
    print(f"profiles in the database after {len(bodies) * BATCH} events; sampled {len(ids)}")
    print(
        f"GET /health (HTTP stack + two tiny reads): p50 {pct(health, 0.5):.2f} ms, "
        f"p99 {pct(health, 0.99):.2f} ms"
    )
    print(
        f"GET /v1/profiles/{{id}}: p50 {pct(reads, 0.5):.2f} ms, p99 {pct(reads, 0.99):.2f} ms "
        f"(budget p99 3 ms; ratio {pct(reads, 0.99) / 3:.2f})"
    )


if __name__ == "__main__":
    main()
