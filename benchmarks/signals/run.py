"""Signals benchmark: from an event acknowledged (HTTP 200 of `/v1/batch`) to its buying
signal routed and visible, at half of the maximum rate measured in the same run.

    .venv/bin/python benchmarks/signals/run.py [--seconds 15] [--concurrency 8]

- The load: the ingest benchmark's batches of 100 realistic events (page and product views,
  cart adds, identifies, till receipts; `benchmarks/ingest/run.py`) into a real
  `polku serve` (embedded SQLite, the pipeline in its own process, every consumer on,
  signals included).
- Maximum rate: closed loop (`--concurrency` requests in flight) for `--seconds`, then the
  time until the pipeline has caught up; the rate is events / (load + catching up), the
  rate the whole system sustains end to end.
- Half load: batches sent at half that rate (open loop, regardless of answers). Each batch
  ends with a probe: a new visitor's third view of one product, which raises the
  `repeat_product_views` rule signal. The probe's time is when the batch's 200 arrived; its
  signal is routed when a reader polling the `signals` table every 2 ms sees it committed.

Budget (issue 5): event to routed signal p99 at most 20 ms at half load, embedded mode.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner

_INGEST = Path(__file__).resolve().parents[1] / "ingest" / "run.py"
_spec = importlib.util.spec_from_file_location("ingest_benchmark", _INGEST)
assert _spec is not None and _spec.loader is not None
ingest: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ingest)

BATCH = ingest.BATCH
PROBE_VIEWS = 3


def probe(rng: random.Random, n: int, now: str) -> list[dict[str, Any]]:
    """A new visitor's three views of one product, 5 s apart (views closer than 2 s count
    as one); the third raises the rule signal."""
    sent = datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
    anon = f"probe-{n:06d}-{rng.getrandbits(32):08x}"
    sku = f"SKU-PROBE-{n:06d}"
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
            "anonymousId": anon,
            "timestamp": (sent - timedelta(seconds=5 * (PROBE_VIEWS - 1 - i))).isoformat(),
            "sentAt": now,
            "context": {"channel": "web", "page": {"path": f"/tuotteet/{sku.lower()}"}},
            "properties": {"product_id": sku, "name": "Talvitakki Revontuli", "price": 189.0},
        }
        for i in range(PROBE_VIEWS)
    ]


def probe_bodies(n_batches: int, seed: int = 7) -> tuple[list[bytes], list[str]]:
    """Batches of 100 events whose last three are a probe; and each probe's signal event."""
    rng = random.Random(seed)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    bodies, probes = [], []
    for n in range(n_batches):
        batch = [
            ingest.make_event(rng, rng.randrange(ingest.PEOPLE), now)
            for _ in range(BATCH - PROBE_VIEWS)
        ]
        views = probe(rng, n, now)
        batch.extend(views)
        probes.append(views[-1]["messageId"])
        bodies.append(orjson.dumps({"batch": batch, "sentAt": now}))
    return bodies, probes


class Watcher:
    """Polls the `signals` table every 2 ms and notes when each event's signal appeared."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        last = 0
        while not self._stop.is_set():
            rows = conn.execute(
                "SELECT id, event_id FROM signals WHERE id > ? ORDER BY id", (last,)
            ).fetchall()
            now = time.time()
            for row_id, event_id in rows:
                self.seen.setdefault(event_id, now)
                last = max(last, row_id)
            time.sleep(0.002)
        conn.close()


async def paced(
    server: Any, bodies: list[bytes], probes: list[str], rate_batches: float, seconds: float
) -> dict[str, float]:
    """Batches at a fixed rate (open loop); returns each probe's acknowledgement time."""
    acked: dict[str, float] = {}
    idle: list[Any] = []
    opened: list[Any] = []
    slots = asyncio.Semaphore(64)

    async def one(body: bytes, probe_id: str) -> None:
        async with slots:
            conn = idle.pop() if idle else ingest.Connection(server)
            if conn not in opened:
                opened.append(conn)
            status, answer = await conn.post(body)
            acked[probe_id] = time.time()
            idle.append(conn)
        ingest.check(status, answer)

    tasks = []
    start = time.perf_counter()
    try:
        for i in range(min(int(rate_batches * seconds), len(bodies))):
            delay = start + i / rate_batches - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(bodies[i], probes[i])))
        await asyncio.gather(*tasks)
    finally:
        for conn in opened:
            await conn.close()
    return acked


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--loads",
        default="0.5",
        help="comma-separated shares of the measured maximum to probe at (the budget is "
        "for 0.5; lower shares show the floor a lightly loaded pipeline gives)",
    )
    args = parser.parse_args()
    loads = [float(x) for x in args.loads.split(",")]

    print(banner("signals benchmark"))
    bodies = ingest.make_bodies(int(args.seconds * 400))
    probe_sets = [probe_bodies(int(args.seconds * 200), seed=7 + i) for i in range(len(loads))]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = ingest.Server(data)
        try:
            uvloop.run(ingest.closed_loop(server, bodies[:50], 4, 5))  # warm-up
            ingest.wait_drained(server)
            started = time.perf_counter()
            sent, elapsed, _ = uvloop.run(
                ingest.closed_loop(server, bodies[50:], args.concurrency, args.seconds)
            )
            drained = ingest.wait_drained(server)
            ingest_rate = sent / elapsed
            end_to_end = sent / (drained - started)
            print(
                f"maximum: {ingest_rate:,.0f} events/s acknowledged over {elapsed:.1f} s; "
                f"{end_to_end:,.0f} events/s end to end (pipeline caught up "
                f"{drained - started - elapsed:.1f} s after the load)"
            )
            results = []
            for share, (half_bodies, probes) in zip(loads, probe_sets, strict=True):
                rate = end_to_end * share
                watcher = Watcher(data / "polku.db")
                watcher.start()
                acked = uvloop.run(paced(server, half_bodies, probes, rate / BATCH, args.seconds))
                ingest.wait_drained(server)
                time.sleep(0.1)
                watcher.stop()
                results.append((share, rate, acked, watcher.seen))
        finally:
            server.stop()
    for share, rate, acked, seen in results:
        latencies = [(seen[p] - t) * 1000 for p, t in acked.items() if p in seen]
        missing = len(acked) - len(latencies)
        p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
        print(
            f"at {share:.0%} load ({rate:,.0f} events/s, {len(acked)} probes, {missing} without "
            f"a signal): acknowledged to routed signal p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"max {max(latencies):.1f} ms (budget p99 20 ms at 50 %: ratio {p99 / 20:.2f})"
        )


if __name__ == "__main__":
    main()
