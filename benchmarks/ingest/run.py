"""Ingest benchmark: sustained events/s into `polku serve` (embedded SQLite), with identity and
profile projection keeping up, batch latency at half that rate, and, in the same run, the
rate of a raw SQLite `executemany` of the same rows (the limit on this machine).

    .venv/bin/python benchmarks/ingest/run.py [--seconds 20] [--concurrency 8]

Batches of 100 realistic ~1 KB events (page views, product views, cart adds, identifies that
join anonymous sessions to users, till receipts with loyalty cards) from concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner, describe

ROOT = Path(__file__).resolve().parents[2]
POLKU = ROOT / ".venv" / "bin" / "polku"
BATCH = 100
PEOPLE = 20_000  # visitors in the run: ~25 events each over a 20 s run at 25k events/s

PRODUCTS = [f"SKU-{n:05d}" for n in range(2000)]
STORES = ["store-hki-kamppi", "store-esp-isoomena", "store-tre-ratina", "store-tku-hansa"]
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def make_event(rng: random.Random, person: int, now: str) -> dict[str, Any]:
    anon = f"anon-{person:07d}"
    user = f"user-{person:07d}"
    sku = rng.choice(PRODUCTS)
    context = {
        "channel": "web",
        "library": {"name": "analytics.js", "version": "next-1.84.3"},
        "page": {
            "path": f"/tuotteet/{sku.lower()}",
            "url": f"https://kauppa.example.fi/tuotteet/{sku.lower()}?utm_source=newsletter",
            "title": "Talvitakki Revontuli - Kauppa",
            "referrer": "https://www.google.com/",
            "search": "?utm_source=newsletter",
        },
        "userAgent": UA,
        "ip": f"10.{person % 250}.{rng.randrange(250)}.{rng.randrange(250)}",
        "locale": "fi-FI",
        "timezone": "Europe/Helsinki",
        "campaign": {"source": "newsletter", "medium": "email", "name": "talvi-2026"},
    }
    roll = rng.random()
    base: dict[str, Any] = {
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "anonymousId": anon,
        "timestamp": now,
        "sentAt": now,
        "context": context,
    }
    if roll < 0.05:
        base.update(
            type="identify",
            userId=user,
            traits={
                "email": f"asiakas{person}@kauppa-posti.fi",
                "first_name": "Aino",
                "last_name": f"Virtanen{person}",
                "loyalty_card": f"LC{person:08d}",
                "consent": {"marketing": {"email": True, "sms": False}},
            },
        )
    elif roll < 0.08:
        context["channel"] = "store"
        context.pop("page")
        base.update(
            type="track",
            event="POS Order Completed",
            userId=None,
            anonymousId=f"till-{person:07d}",
            properties={
                "store_id": rng.choice(STORES),
                "receipt_id": f"R-{rng.getrandbits(40)}",
                "loyalty_card": f"LC{person:08d}",
                "total": 129.8,
                "currency": "EUR",
                "products": [
                    {"product_id": sku, "sku": sku, "price": 89.9, "quantity": 1},
                    {"product_id": "SKU-00001", "sku": "SKU-00001", "price": 39.9, "quantity": 1},
                ],
            },
        )
        base.pop("userId")
    elif roll < 0.5:
        base.update(type="page", name="Product", properties={"path": context["page"]["path"]})
    elif roll < 0.85:
        base.update(
            type="track",
            event="Product Viewed",
            properties={
                "product_id": sku,
                "sku": sku,
                "name": "Talvitakki Revontuli",
                "category": "Naiset/Takit/Talvitakit",
                "price": 189.0,
                "currency": "EUR",
                "brand": "Polku Outdoor",
                "variant": "M / musta",
            },
        )
    else:
        base.update(
            type="track",
            event="Product Added",
            properties={
                "cart_id": f"cart-{person}",
                "product_id": sku,
                "sku": sku,
                "price": 189.0,
                "quantity": 1,
                "currency": "EUR",
            },
        )
    return base


def make_bodies(n_batches: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    bodies = []
    for _ in range(n_batches):
        batch = [make_event(rng, rng.randrange(PEOPLE), now) for _ in range(BATCH)]
        bodies.append(orjson.dumps({"batch": batch, "sentAt": now}))
    return bodies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time one process has used so far (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (the pipeline process of `polku serve`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds used by the load client (this process), the server and its children
    between `start()` and `stop()`: where the two cores went, per event."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        return {
            "client": time.process_time(),
            "server": cpu_seconds(self.server_pid),
            "pipeline": sum(cpu_seconds(c) for c in children(self.server_pid)),
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> None:
        after = self._sample()
        self.used = {k: after[k] - self.before[k] for k in after}

    def per_event(self, events: int) -> dict[str, float]:
        return {k: round(v / events * 1e6, 1) for k, v in self.used.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir / "server.log", "w")  # noqa: SIM115
        env = {**os.environ, "POLKU_DATA_DIR": str(data_dir), "POLKU_PORT": str(self.port)}
        self.proc = subprocess.Popen(
            [str(POLKU), "serve"], env=env, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self.write_key = self.admin = ""
        self.client: httpx.Client | None = None
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (self.write_key and self.admin):
            line = self.proc.stdout.readline()
            if "write key:" in line:
                self.write_key = line.split("write key:")[1].split()[0]
            if "admin token:" in line:
                self.admin = line.split("admin token:")[1].split()[0]
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def health(self) -> dict[str, Any]:
        # One kept-alive client: a new one per poll (httpx.get) costs milliseconds of CPU
        # (an SSL context each time) that the pipeline being waited for would miss.
        if self.client is None:
            self.client = httpx.Client(base_url=self.url, timeout=30)
        return dict(self.client.get("/health").json())

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


_IDLE_REUSE = 3.0  # s; uvicorn closes a kept-alive connection after 5 s without a request


class Connection:
    """One kept-alive HTTP/1.1 connection that posts batch bodies to ``/v1/batch``.

    A minimal client: the load generator shares the machine's two cores with the server,
    and a general-purpose client (httpx) spent ~40 µs of CPU per event, half the budget of
    the whole system at the target rate. The requests are the same bytes an SDK sends
    (HTTP Basic write key, JSON body); each answer is read whole and checked.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.used = 0.0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        token = base64.b64encode(f"{server.write_key}:".encode()).decode()
        self.head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
        ).encode()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one batch; return the status code and the response body."""
        if self.writer is not None and time.monotonic() - self.used > _IDLE_REUSE:
            await self.close()  # the server may be closing it right now: do not race it
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        assert self.reader is not None
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected from /v1/batch")
        answer = await self.reader.readexactly(length)
        self.used = time.monotonic()
        return status, answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def check(status: int, answer: bytes) -> None:
    """Every event of the batch must have been accepted (and so be durable in the log)."""
    if status != 200 or orjson.loads(answer).get("accepted") != BATCH:
        raise RuntimeError(f"batch failed: {status} {answer[:300]!r}")


async def closed_loop(
    server: Server, bodies: list[bytes], concurrency: int, seconds: float
) -> tuple[int, float, list[float]]:
    """As fast as the server answers, `concurrency` requests in flight, for `seconds`."""
    latencies: list[float] = []
    sent = 0
    index = 0
    start = time.perf_counter()
    stop_at = start + seconds

    async def worker() -> None:
        nonlocal sent, index
        conn = Connection(server)
        try:
            while time.perf_counter() < stop_at and index < len(bodies):
                body = bodies[index]
                index += 1
                t0 = time.perf_counter()
                status, answer = await conn.post(body)
                latencies.append(time.perf_counter() - t0)
                check(status, answer)
                sent += BATCH
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent, time.perf_counter() - start, latencies


async def open_loop(
    server: Server, bodies: list[bytes], rate_batches: float, seconds: float
) -> list[float]:
    """Batches sent at a fixed rate regardless of answers (latency without queueing bias);
    a batch that finds no idle connection opens another one (at most 64)."""
    latencies: list[float] = []
    idle: list[Connection] = []
    opened: list[Connection] = []
    slots = asyncio.Semaphore(64)

    async def one(body: bytes) -> None:
        t0 = time.perf_counter()
        async with slots:
            if idle:
                conn = idle.pop()
            else:
                conn = Connection(server)
                opened.append(conn)
            status, answer = await conn.post(body)
            latencies.append(time.perf_counter() - t0)
            idle.append(conn)
        check(status, answer)

    tasks = []
    start = time.perf_counter()
    n = int(rate_batches * seconds)
    try:
        for i in range(min(n, len(bodies))):
            due = start + i / rate_batches
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(bodies[i])))
        await asyncio.gather(*tasks)
    finally:
        for conn in opened:
            await conn.close()
    return latencies


def wait_drained(server: Server, timeout: float = 300) -> float:
    if os.environ.get("POLKU_PIPELINE") == "off":
        return time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = server.health()
        if h["pipeline_position"] >= h["log_head"]:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError("pipeline did not catch up")


def raw_sqlite_rate(bodies: list[bytes], path: Path) -> float:
    """Rows/s of a plain sqlite3 executemany of the same rows into the same schema, one
    transaction per 100-row batch, WAL and synchronous=FULL like Polku's default."""
    rows = []
    for body in bodies:
        for m in orjson.loads(body)["batch"]:
            rows.append(
                (
                    "default",
                    "src",
                    m["messageId"],
                    m["type"],
                    m.get("event"),
                    m.get("userId") or m["anonymousId"],
                    1,
                    1,
                    orjson.dumps(m),
                )
            )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        'CREATE TABLE log_events ("offset" INTEGER PRIMARY KEY, workspace_id TEXT, '
        "source_id TEXT, message_id TEXT, type TEXT, event TEXT, partition_key TEXT, "
        "received_at INTEGER, timestamp INTEGER, payload BLOB, UNIQUE (workspace_id, message_id))"
    )
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO log_events (workspace_id, source_id, message_id, type, event, "
            "partition_key, received_at, timestamp, payload) VALUES (?,?,?,?,?,?,?,?,?)",
            rows[i : i + BATCH],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--no-pipeline",
        action="store_true",
        help="run the server without the pipeline: the cost of ingest alone",
    )
    args = parser.parse_args()
    if args.no_pipeline:
        os.environ["POLKU_PIPELINE"] = "off"

    print(banner("ingest benchmark"))
    max_batches = int(args.seconds * 600)
    bodies = make_bodies(max_batches)
    size = statistics.mean(len(b) for b in bodies) / BATCH
    print(f"events: batches of {BATCH}, mean {size:.0f} bytes/event, {len(bodies)} batches ready")

    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_sqlite_rate(bodies[: min(len(bodies), 2000)], Path(tmp) / "raw.db")
        print(f"raw sqlite executemany (same rows, 100/txn, WAL, FULL): {raw:,.0f} rows/s")

        server = Server(Path(tmp))
        try:
            uvloop.run(closed_loop(server, bodies[:50], 4, 5))  # warm-up
            wait_drained(server)
            meter = CpuMeter(server.proc.pid)
            meter.start()
            started = time.perf_counter()
            sent, elapsed, lat = uvloop.run(
                closed_loop(server, bodies[50:], args.concurrency, args.seconds)
            )
            load_ended = time.perf_counter()
            drained = wait_drained(server)
            meter.stop()
            cpu = meter.per_event(sent)
            rate = sent / elapsed
            lag = drained - load_ended
            projected = sent / (drained - started)
            print(
                f"sustained ingest: {rate:,.0f} events/s over {elapsed:.1f}s "
                f"({args.concurrency} concurrent clients); batch latency p50 "
                f"{pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms"
            )
            print(
                "CPU per event (load and catching up): "
                + ", ".join(f"{k} {v:.1f} µs" for k, v in cpu.items())
                + f"; total {sum(cpu.values()):.1f} µs of the "
                f"{(os.cpu_count() or 1) * 1e6 / 25000:.0f} µs that 25,000 events/s allow"
            )
            h = server.health()
            if not args.no_pipeline:
                print(
                    f"pipeline caught up {lag:.1f}s after the load ended: "
                    f"{projected:,.0f} events/s projected end to end "
                    f"(position {h['pipeline_position']}, head {h['log_head']})"
                )
            used = 50 + sent // BATCH
            half = rate / 2 / BATCH
            lat_half = uvloop.run(open_loop(server, bodies[used:], half, min(args.seconds, 15)))
            t_drain = wait_drained(server)
            print(
                f"at half rate ({half * BATCH:,.0f} events/s, open loop): batch latency p50 "
                f"{pct(lat_half, 0.5):.1f} ms, p99 {pct(lat_half, 0.99):.1f} ms"
            )
            del t_drain
        finally:
            server.stop()
    result = {
        "machine": describe(),
        "event_bytes": round(size),
        "raw_sqlite_rows_per_s": round(raw),
        "sustained_events_per_s": round(rate),
        "ratio_to_raw": round(rate / raw, 3),
        "pipeline_lag_s": round(lag, 1),
        "projected_events_per_s": round(projected),
        "cpu_us_per_event": cpu,
        "p50_ms": round(pct(lat, 0.5), 1),
        "p99_ms": round(pct(lat, 0.99), 1),
        "half_rate_events_per_s": round(half * BATCH),
        "half_rate_p50_ms": round(pct(lat_half, 0.5), 1),
        "half_rate_p99_ms": round(pct(lat_half, 0.99), 1),
        "target_events_per_s": 25000,
        "target_p99_ms": 50,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
