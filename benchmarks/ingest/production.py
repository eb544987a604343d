"""Ingest benchmark, production mode: `polku serve` processes appending to NATS JetStream and
`polku worker` processes projecting it into PostgreSQL, on this machine.

    .venv/bin/python benchmarks/ingest/production.py                  # the 3 x 3 matrix
    .venv/bin/python benchmarks/ingest/production.py --cells 1x1,2x2 --seconds 20

For each cell (API processes x workers) it makes a fresh PostgreSQL database and JetStream
stream, runs `polku migrate`, starts the processes, and sends batches of 100 realistic ~1 KB
events (the generator of `run.py`) round-robin over the API processes from concurrent clients
for a fixed time (closed loop). It reports sustained accepted events/s and batch latency, the
workers' lag behind the stream sampled every 0.5 s, how long after the load they caught up,
and batch latency at half the sustained rate (open loop, fixed send times). In the same run it
measures the two limits: a plain JetStream publish of the same message bodies (1, 2 and 4
connections, one process each) and a PostgreSQL COPY of the same rows into a table of
`log_events`' shape. PostgreSQL, NATS, the processes and the load client share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import nats
import nats.js.errors
import orjson
import psycopg
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner, describe
from run import BATCH, free_port, make_bodies, pct

import polku
from polku.collect.validate import prepare
from polku.identity.identifiers import IdentityConfig
from polku.log.nats import NatsLog, partition_of

# The exact body and dedupe header `NatsLog.append` publishes: private helpers, imported on
# purpose so that the JetStream limit publishes byte for byte what Polku publishes.
from polku.log.nats import _encode as encode_envelope
from polku.log.nats import _msg_id as dedupe_id
from polku.log.tables import log_events
from polku.runtime import consumers

ROOT = Path(__file__).resolve().parents[2]
POLKU = ROOT / ".venv" / "bin" / "polku"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
NATS_URL = "nats://127.0.0.1:4222"
COUNTS = (1, 2, 4)
LIMIT_EVENTS = 60_000  # events per limit measurement
COPY_BATCH = 500  # rows per COPY transaction: the workers' default batch (POLKU_WORKER_BATCH)
MAX_AGE = 30 * 24 * 3600.0  # the stream settings `polku migrate` uses by default
DUPLICATE_WINDOW = 120.0

Message = tuple[str, bytes, str]  # subject after the stream's prefix, body, Nats-Msg-Id
Row = tuple[Any, ...]  # a row of log_events, as `store_copies` writes it


# -- the deployment of one cell ------------------------------------------------------------


class Process:
    """One `polku` command as a child process, its output in `log_path`."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(POLKU), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class Api(Process):
    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "POLKU_HOST": "127.0.0.1", "POLKU_PORT": str(self.port)}
        super().__init__(name, ["serve"], env, log_path)

    def ready(self) -> bool:
        self.check_alive()
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


class Worker(Process):
    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        port = self.metrics_url.split(":")[2].split("/")[0]
        super().__init__(name, ["worker", "--id", name, "--metrics-port", port], env, log_path)

    def ready(self) -> bool:
        self.check_alive()
        return f"Polku worker {self.name} ready" in self.output()


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not so after {timeout:g} s")
        time.sleep(0.05)


@contextlib.contextmanager
def fresh_database(base_url: str, prefix: str) -> Iterator[str]:
    """A new database on the machine's PostgreSQL server (the URL of it), dropped after.

    A database, not a schema: PostgreSQL's advisory locks are per database, and Polku's
    (identity per workspace, checkpoint claims) carry no schema, so a deployment in a schema
    of a shared database would queue behind the test suites running in its other schemas."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base_url)
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def delete_stream(nats_url: str, stream: str) -> None:
    nc = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


class Cluster:
    """One production-mode Polku: its own database and stream, N API processes, M workers."""

    def __init__(self, args: argparse.Namespace, apis: int, workers: int, folder: Path) -> None:
        self.args = args
        self.n_apis = apis
        self.n_workers = workers
        self.folder = folder
        tag = uuid.uuid4().hex[:10]
        self.stream = f"BENCH_{tag}"
        self.partitions = args.partitions
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("POLKU_")}
        self.env.update(
            PYTHONUNBUFFERED="1",
            POLKU_LOG_URL=args.nats,
            POLKU_NATS_STREAM=self.stream,
            POLKU_NATS_SUBJECT_PREFIX=f"b{tag}.events",
            POLKU_PARTITIONS=str(args.partitions),
            POLKU_LEASE_SECONDS=str(args.lease_seconds),
            POLKU_LOG_FORMAT="text",
        )
        self.apis: list[Api] = []
        self.workers: list[Worker] = []
        self.write_key = ""
        self.database_url = ""

    @contextlib.contextmanager
    def running(self) -> Iterator[Cluster]:
        with fresh_database(self.args.postgres, "bench") as url:
            self.database_url = url
            self.env["POLKU_DATABASE_URL"] = url
            try:
                self._migrate()
                self._start()
                yield self
            finally:
                for process in [*self.workers, *self.apis]:
                    process.stop()
                asyncio.run(delete_stream(self.args.nats, self.stream))

    def _migrate(self) -> None:
        result = subprocess.run(
            [str(POLKU), "migrate"], env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"polku migrate failed:\n{result.stdout}{result.stderr}")

    def _start(self) -> None:
        # The first API process bootstraps the fresh database and prints the write key; the
        # others start after it, all at once.
        first = Api("api-1", self.env, self.folder / "api-1.log")
        self.apis.append(first)
        wait_for(first.ready, 60, "api-1 answers /healthz")
        key = re.search(r"write key:\s+(\S+)", first.output())
        if key is None:
            raise RuntimeError(f"api-1 printed no write key:\n{first.output()}")
        self.write_key = key.group(1)
        for i in range(2, self.n_apis + 1):
            self.apis.append(Api(f"api-{i}", self.env, self.folder / f"api-{i}.log"))
        for i in range(1, self.n_workers + 1):
            name = f"worker-{i}"
            self.workers.append(Worker(name, self.env, self.folder / f"{name}.log"))
        for process in [*self.apis, *self.workers]:
            wait_for(process.ready, 60, f"{process.name} ready")
        wait_for(self._balanced, 60, "every worker holds its share of the partitions")

    def _balanced(self) -> bool:
        for worker in self.workers:
            worker.check_alive()
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT owner, count(*) FROM pipeline_leases "
                "WHERE expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint "
                "GROUP BY owner"
            ).fetchall()
        share = math.ceil(self.partitions / self.n_workers)
        owned = {owner: n for owner, n in rows if owner is not None}
        return len(owned) == self.n_workers and all(n == share for n in owned.values())

    def takeovers(self) -> int:
        """Partitions taken by any worker so far (a rise during the load: a rebalance)."""
        return sum(w.output().count(": taken (epoch") for w in self.workers)


# -- consumer lag --------------------------------------------------------------------------


@dataclass
class Lag:
    at: float  # perf_counter
    head: int  # the stream's last sequence
    archive: int  # events in NATS not yet copied into PostgreSQL
    stages: dict[str, int]  # per consumer: events it has not processed (in NATS or copied)

    @property
    def behind(self) -> int:
        """Events not yet through every consumer: the end-to-end lag."""
        return max([self.archive, *self.stages.values()])


_PROJECTION_LAG = """
SELECT c.stage, sum(x.n)::bigint
FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS c(stage, p, off),
     LATERAL (SELECT count(*) AS n FROM log_events e
              WHERE e.partition = c.p AND e."offset" > c.off) AS x
GROUP BY c.stage
"""


class LagProbe:
    """Samples the stream's head, the partition readers' pending messages (NATS) and the
    events copied into `log_events` past each partition's checkpoint of each consumer."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.stages = [c.name for c in consumers(IdentityConfig())]  # identity, profiles, ...
        self._nc: Any = None
        self._js: Any = None
        self._pg: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> LagProbe:
        self._nc = await nats.connect(self.cluster.args.nats, connect_timeout=2)
        self._js = self._nc.jetstream()
        self._pg = await psycopg.AsyncConnection.connect(self.cluster.database_url, autocommit=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._nc is not None:
            await self._nc.close()

    async def sample(self) -> Lag | None:
        """None while some partition has no reader yet (its lag is unknown)."""
        assert self._pg is not None
        info = await self._js.stream_info(self.cluster.stream)
        readers: dict[int, tuple[int, int]] = {}  # partition -> (epoch, undelivered + unacked)
        for consumer in await self._js.consumers_info(self.cluster.stream):
            found = re.fullmatch(r"polku-p(\d+)-e(\d+)", consumer.name or "")
            if found is None:
                continue
            p, epoch = int(found.group(1)), int(found.group(2))
            pending = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
            if p not in readers or readers[p][0] < epoch:
                readers[p] = (epoch, pending)
        if len(readers) < self.cluster.partitions:
            return None
        archive = sum(pending for _, pending in readers.values())
        cur = await self._pg.execute('SELECT consumer, "offset" FROM log_checkpoints')
        found_offsets = {str(name): int(offset) for name, offset in await cur.fetchall()}
        stages, parts, offsets = [], [], []
        for stage in self.stages:
            for p in range(self.cluster.partitions):
                stages.append(stage)
                parts.append(p)
                offsets.append(found_offsets.get(f"{stage}.p{p}", 0))
        cur = await self._pg.execute(_PROJECTION_LAG, (stages, parts, offsets))
        behind = {str(stage): int(n) for stage, n in await cur.fetchall()}
        return Lag(
            at=time.perf_counter(),
            head=int(info.state.last_seq),
            archive=archive,
            stages={stage: archive + behind.get(stage, 0) for stage in self.stages},
        )

    async def until_caught_up(self, head: int, timeout: float, every: float = 0.25) -> Lag | None:
        """The first sample with everything up to `head` projected; None after `timeout`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            lag = await self.sample()
            if lag is not None and lag.head >= head and lag.behind == 0:
                return lag
            await asyncio.sleep(every)
        return None


# -- Polku's own metrics ---------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(urls: Sequence[str]) -> Samples:
    """The Prometheus samples of these /metrics endpoints, summed over the processes."""
    found: Samples = {}
    for url in urls:
        text = httpx.get(url, timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                found[key] = found.get(key, 0.0) + sample.value
    return found


def scrape_all(cluster: Cluster) -> Samples:
    urls = [a.url + "/metrics" for a in cluster.apis] + [w.metrics_url for w in cluster.workers]
    return scrape(urls)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def stage_figures(before: Samples, after: Samples) -> dict[str, dict[str, float]]:
    """Per pipeline stage between two scrapes: batches, events per batch, ms per batch (the
    lock waits inside the transaction included), and the summed batch time."""
    figures = {}
    stages = {
        dict(labels).get("consumer", "")
        for name, labels in after
        if name == "polku_consumer_batch_duration_seconds_count"
    }
    for stage in sorted(stages, key=lambda s: (s != "archive", s)):
        name = "polku_consumer_batch_duration_seconds"
        count = total(after, name + "_count", consumer=stage) - total(
            before, name + "_count", consumer=stage
        )
        seconds = total(after, name + "_sum", consumer=stage) - total(
            before, name + "_sum", consumer=stage
        )
        events = total(after, "polku_consumer_events_total", consumer=stage) - total(
            before, "polku_consumer_events_total", consumer=stage
        )
        figures[stage] = {
            "batches": count,
            "events_per_batch": events / count if count else 0.0,
            "ms_per_batch": seconds / count * 1000 if count else 0.0,
            "busy_s": seconds,
        }
    return figures


def append_ms(before: Samples, after: Samples) -> float:
    """Mean time of an API request's append to JetStream (from the API's own histogram)."""
    name = "polku_log_append_duration_seconds"
    count = total(after, name + "_count") - total(before, name + "_count")
    seconds = total(after, name + "_sum") - total(before, name + "_sum")
    return seconds / count * 1000 if count else 0.0


# -- CPU -----------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, everyone's processes)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK


class CpuMeter:
    """CPU seconds used by each part of the deployment, to say where the cores went."""

    def __init__(self, cluster: Cluster) -> None:
        self.groups = {
            "api": [a.proc.pid for a in cluster.apis],
            "workers": [w.proc.pid for w in cluster.workers],
            "load client": [os.getpid()],
            "nats-server": pids_named("nats-server"),
            "postgres": self._backends(cluster.database_url),
        }

    @staticmethod
    def _backends(database_url: str) -> list[int]:
        """The server processes of the deployment's database connections (pooled, so they
        live through the load; the server's own background processes are not counted)."""
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        return [int(pid) for (pid,) in rows]

    def snapshot(self) -> dict[str, float]:
        found = {name: sum(map(cpu_seconds, pids)) for name, pids in self.groups.items()}
        found["machine"] = machine_busy()
        found["wall"] = time.perf_counter()
        return found

    @staticmethod
    def cores(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Cores busy on average between two snapshots, per part (machine: everyone)."""
        wall = after["wall"] - before["wall"]
        return {k: (after[k] - before[k]) / wall for k in before if k != "wall"}


# -- load ----------------------------------------------------------------------------------


async def post(client: httpx.AsyncClient, url: str, body: bytes) -> None:
    r = await client.post(
        url + "/v1/batch", content=body, headers={"Content-Type": "application/json"}
    )
    if r.status_code != 200 or r.json().get("accepted") != BATCH:
        raise RuntimeError(f"batch failed at {url}: {r.status_code} {r.text[:300]}")


async def closed_loop(
    urls: Sequence[str], key: str, bodies: Sequence[bytes], concurrency: int, seconds: float
) -> tuple[int, float, list[float]]:
    """`concurrency` requests in flight for `seconds`, spread round-robin over `urls`."""
    latencies: list[float] = []
    index = 0
    start = time.perf_counter()
    stop_at = start + seconds
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(auth=(key, ""), timeout=60, limits=limits) as client:

        async def sender() -> None:
            nonlocal index
            while time.perf_counter() < stop_at and index < len(bodies):
                i = index
                index += 1
                t0 = time.perf_counter()
                await post(client, urls[i % len(urls)], bodies[i])
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return len(latencies) * BATCH, time.perf_counter() - start, latencies


async def open_loop(
    urls: Sequence[str], key: str, bodies: Sequence[bytes], rate_batches: float, seconds: float
) -> list[float]:
    """Batches sent at fixed times whatever the answers, round-robin over `urls`."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=64)
    async with httpx.AsyncClient(auth=(key, ""), timeout=60, limits=limits) as client:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            await post(client, urls[i % len(urls)], bodies[i])
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        for i in range(min(int(rate_batches * seconds), len(bodies))):
            delay = start + i / rate_batches - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


@dataclass
class CellResult:
    apis: int
    workers: int
    concurrency: int
    seconds: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    max_lag: int  # end to end (not yet in profiles), during the load
    final_lag: int  # at the end of the load
    max_archive_lag: int  # not yet copied into PostgreSQL, during the load
    lag_growth_per_s: float  # slope of the end-to-end lag over the load
    caught_up_s: float | None  # after the load ended; None: not within the drain timeout
    end_to_end_per_s: float  # events projected / time from the load's start
    half_rate_per_s: float
    half_p50_ms: float
    half_p99_ms: float
    takeovers_during_load: int
    cores_during_load: dict[str, float]  # average cores busy per part during the load
    api_cpu_us_per_event: float  # API processes' CPU per accepted event, during the load
    worker_cpu_us_per_event: float  # workers' CPU per event, from the load's start to caught up
    append_ms: float  # mean JetStream append per request, in the API, during the load
    stages: dict[str, dict[str, float]]  # per stage, from the load's start to caught up
    lag_samples: list[tuple[float, int, int]] = field(default_factory=list)


def slope(points: Sequence[tuple[float, int]]) -> float:
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


async def drive(
    cluster: Cluster, bodies: Sequence[bytes], args: argparse.Namespace, concurrency: int
) -> CellResult:
    urls = [api.url for api in cluster.apis]
    key = cluster.write_key
    async with LagProbe(cluster) as probe:
        await closed_loop(urls, key, bodies[:50], 4, 10)  # warm-up: connections, caches
        if await probe.until_caught_up(50 * BATCH, 120) is None:
            raise RuntimeError("the workers did not project the warm-up batches")
        takeovers = cluster.takeovers()
        samples: list[Lag] = []
        stop = asyncio.Event()

        async def sampler() -> None:
            while not stop.is_set():
                lag = await probe.sample()
                if lag is not None:
                    samples.append(lag)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

        task = asyncio.create_task(sampler())
        profilers = start_profilers(cluster, args)
        meter = CpuMeter(cluster)
        metrics_start = scrape_all(cluster)
        cpu_start = meter.snapshot()
        started = time.perf_counter()
        sent, elapsed, lat = await closed_loop(urls, key, bodies[50:], concurrency, args.seconds)
        ended = time.perf_counter()
        cpu_end = meter.snapshot()
        metrics_end = scrape_all(cluster)
        stop.set()
        await task
        takeovers = cluster.takeovers() - takeovers
        head = 50 * BATCH + sent
        at_end = await probe.sample()
        assert at_end is not None
        samples.append(at_end)
        if at_end.head != head:
            print(f"  note: stream head {at_end.head}, expected {head}")
        done = await probe.until_caught_up(head, args.drain_timeout)
        cpu_drained = meter.snapshot()
        metrics_drained = scrape_all(cluster)
        if done is not None:
            caught_up: float | None = done.at - ended
            end_to_end = sent / (done.at - started)
        else:
            caught_up = None
            last = await probe.sample()
            assert last is not None
            end_to_end = (sent - last.behind) / (last.at - started)
        projected = sent if done is not None else sent - last.behind
        rate = sent / elapsed
        used = 50 + sent // BATCH
        half = rate / 2 / BATCH
        lat_half = await open_loop(urls, key, bodies[used:], half, args.half_seconds)
        for profiler in profilers:  # py-spy takes a while to write its file after the load
            profiler.wait()
    during = samples[:-1]
    return CellResult(
        apis=cluster.n_apis,
        workers=cluster.n_workers,
        concurrency=concurrency,
        seconds=round(elapsed, 1),
        events_per_s=rate,
        p50_ms=pct(lat, 0.5),
        p99_ms=pct(lat, 0.99),
        max_lag=max(s.behind for s in samples),
        final_lag=at_end.behind,
        max_archive_lag=max(s.archive for s in samples),
        lag_growth_per_s=slope([(s.at, s.behind) for s in during]),
        caught_up_s=caught_up,
        end_to_end_per_s=end_to_end,
        half_rate_per_s=half * BATCH,
        half_p50_ms=pct(lat_half, 0.5),
        half_p99_ms=pct(lat_half, 0.99),
        takeovers_during_load=takeovers,
        cores_during_load={k: round(v, 2) for k, v in CpuMeter.cores(cpu_start, cpu_end).items()},
        api_cpu_us_per_event=(cpu_end["api"] - cpu_start["api"]) / sent * 1e6,
        worker_cpu_us_per_event=(cpu_drained["workers"] - cpu_start["workers"])
        / max(projected, 1)
        * 1e6,
        append_ms=append_ms(metrics_start, metrics_end),
        stages=stage_figures(metrics_start, metrics_drained),
        lag_samples=[(round(s.at - started, 2), s.archive, s.behind) for s in samples],
    )


class Profiler:
    """`py-spy record` of one process for the load's duration (raw collapsed stacks)."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        spy = ROOT / ".venv" / "bin" / "py-spy"
        command = [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
        command += ["--rate", "100", "--format", "raw", "--idle", "--nonblocking", "--threads"]
        self.proc = subprocess.Popen(
            [*command, "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self) -> None:
        self.proc.wait(60)


def start_profilers(cluster: Cluster, args: argparse.Namespace) -> list[Profiler]:
    if args.profile is None:
        return []
    args.profile.mkdir(parents=True, exist_ok=True)
    cell = f"{cluster.n_apis}x{cluster.n_workers}"
    return [
        Profiler(cluster.apis[0].proc.pid, args.seconds, args.profile / f"{cell}-api-1.txt"),
        Profiler(cluster.workers[0].proc.pid, args.seconds, args.profile / f"{cell}-worker-1.txt"),
    ]


def run_cell(
    args: argparse.Namespace, apis: int, workers: int, bodies: Sequence[bytes]
) -> CellResult:
    concurrency = args.concurrency or max(8, 4 * apis)
    with contextlib.ExitStack() as stack:
        if args.logs is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            folder = args.logs / f"{apis}x{workers}-{time.strftime('%H%M%S')}"
            folder.mkdir(parents=True)
        cluster = Cluster(args, apis, workers, folder)
        with cluster.running():
            return asyncio.run(drive(cluster, bodies, args, concurrency))


# -- the limits ----------------------------------------------------------------------------


def limit_events(events: int, partitions: int) -> tuple[list[Message], list[Row]]:
    """The events of `make_bodies(seed=2)` as the API prepares them: the messages it would
    publish (subject after the prefix, body, dedupe id) and the rows a worker would store."""
    identity = IdentityConfig()
    received = int(time.time() * 1000)
    naming = NatsLog(["nats://unused"], stream="S", subject_prefix="P", partitions=partitions)
    messages: list[Message] = []
    rows: list[Row] = []
    for body in make_bodies(math.ceil(events / BATCH), seed=2):
        data = orjson.loads(body)
        for i, m in enumerate(data["batch"]):
            e = prepare(
                m,
                implied_type=None,
                received_at=received,
                batch_sent_at=data["sentAt"],
                workspace_id="default",
                source_id="src_bench",
                max_event_bytes=32 * 1024,
                identity=identity,
                index=i,
            )
            tail = naming.subject(e.workspace_id, e.partition_key).removeprefix("P.")
            messages.append((tail, encode_envelope(e), dedupe_id(e.workspace_id, e.message_id)))
            rows.append(
                (
                    len(rows) + 1,
                    partition_of(e.partition_key, partitions),
                    e.workspace_id,
                    e.source_id,
                    e.message_id,
                    e.type,
                    e.event,
                    e.partition_key,
                    e.received_at,
                    e.timestamp,
                    e.payload,
                )
            )
    return messages, rows


def publish_child(
    nats_url: str, stream: str, prefix: str, messages: list[Message], in_flight: int,
    wait_stall: float | None, barrier: Any, results: Any,
) -> None:  # fmt: skip
    """One connection publishing `messages`, `in_flight` batches of 100 at a time, each
    batch pipelined with publish_async and its acks awaited together, as `NatsLog.append`.

    `wait_stall`: None, or 10 s as `NatsLog.append` passes it. On Python 3.11 a wait_stall
    makes every publish_async go through `asyncio.wait_for` (a task and a turn of the event
    loop), so nats-py's flusher writes almost every message to the socket on its own."""
    batches = [messages[i : i + BATCH] for i in range(0, len(messages), BATCH)]

    async def run() -> tuple[float, float, int]:
        nc = await nats.connect(nats_url, connect_timeout=2)
        js = nc.jetstream(timeout=10)
        todo = iter(batches)
        count = 0

        async def sender() -> None:
            nonlocal count
            for batch in todo:
                acks = [
                    await js.publish_async(
                        f"{prefix}.{tail}",
                        body,
                        wait_stall=wait_stall,
                        stream=stream,
                        headers={"Nats-Msg-Id": mid},
                    )
                    for tail, body, mid in batch
                ]
                await asyncio.wait_for(asyncio.gather(*acks), timeout=10)
                count += len(batch)

        barrier.wait()
        start = time.time()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        end = time.time()
        await nc.close()
        return start, end, count

    results.put(asyncio.run(run()))


COPY_SQL = (
    'COPY log_events ("offset", partition, workspace_id, source_id, message_id, type, event, '
    "partition_key, received_at, timestamp, payload) FROM STDIN (FORMAT BINARY)"
)
COPY_TYPES = ["int8", "int4", "text", "text", "text", "text", "text", "text", "int8", "int8"]


def copy_child(database_url: str, rows: list[Row], barrier: Any, results: Any) -> None:
    """One connection COPYing the rows a worker would store, 500 per transaction (a worker
    commits each batch it copies)."""
    with psycopg.connect(database_url) as conn:
        barrier.wait()
        start = time.time()
        for i in range(0, len(rows), COPY_BATCH):
            with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                copy.set_types([*COPY_TYPES, "bytea"])
                for row in rows[i : i + COPY_BATCH]:
                    copy.write_row(row)
        end = time.time()
    results.put((start, end, len(rows)))


def in_processes(target: Any, args_of: Sequence[tuple[Any, ...]]) -> float:
    """Run `target(*args, barrier, results)` in one forked process per args tuple (forked: the
    data is not copied), started together at a barrier; the events/s of all of them from the
    first start to the last end. The parent holds no connection or running loop here."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(args_of))
    results = context.Queue()
    children = [context.Process(target=target, args=(*a, barrier, results)) for a in args_of]
    for child in children:
        child.start()
    found = [results.get(timeout=300) for _ in children]
    for child in children:
        child.join(30)
    start = min(s for s, _, _ in found)
    end = max(e for _, e, _ in found)
    return sum(n for _, _, n in found) / (end - start)


async def make_stream(nats_url: str, stream: str, prefix: str) -> None:
    """A throwaway stream with the storage settings `polku migrate` gives Polku's stream."""
    nc = await nats.connect(nats_url, connect_timeout=2)
    try:
        await nc.jetstream().add_stream(
            StreamConfig(
                name=stream,
                subjects=[f"{prefix}.>"],
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.OLD,
                max_age=MAX_AGE,
                storage=StorageType.FILE,
                num_replicas=1,
                duplicate_window=DUPLICATE_WINDOW,
            )
        )
    finally:
        await nc.close()


def shares(items: list[Any], n: int) -> list[list[Any]]:
    return [items[i::n] for i in range(n)]


def jetstream_limit(
    args: argparse.Namespace, messages: list[Message], connections: int, wait_stall: float | None
) -> float:
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"BENCHLIMIT_{tag}", f"bl{tag}.events"
    asyncio.run(make_stream(args.nats, stream, prefix))
    try:
        return in_processes(
            publish_child,
            [
                (args.nats, stream, prefix, share, args.limit_in_flight, wait_stall)
                for share in shares(messages, connections)
            ],
        )
    finally:
        asyncio.run(delete_stream(args.nats, stream))


def copy_limit(args: argparse.Namespace, rows: list[Row], connections: int) -> float:
    with fresh_database(args.postgres, "benchcopy") as url:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        log_events.create(engine)  # the same columns, keys and indexes as Polku's table
        engine.dispose()
        return in_processes(copy_child, [(url, share) for share in shares(rows, connections)])


@dataclass
class Limits:
    jetstream: dict[int, float]  # connections -> events/s
    copy: dict[int, float]
    jetstream_wait_stall: dict[int, float]  # publish_async(wait_stall=10), as NatsLog calls it


def measure_limits(args: argparse.Namespace) -> Limits:
    messages, rows = limit_events(LIMIT_EVENTS, args.partitions)
    jetstream = {n: jetstream_limit(args, messages, n, None) for n in COUNTS}
    for n, rate in jetstream.items():
        print(
            f"limit: plain JetStream publish, {n} connection(s) in {n} process(es), "
            f"{args.limit_in_flight} batches of {BATCH} in flight each: {rate:,.0f} events/s"
        )
    stalled = {1: jetstream_limit(args, messages, 1, 10.0)}
    for n, rate in stalled.items():
        print(
            f"  the same with publish_async(wait_stall=10) as NatsLog.append calls it, {n} "
            f"connection: {rate:,.0f} events/s"
        )
    copy = {n: copy_limit(args, rows, n) for n in (1, 4)}
    for n, rate in copy.items():
        print(
            f"limit: PostgreSQL COPY (binary) into a table of log_events' shape, {COPY_BATCH} "
            f"rows per transaction, {n} connection(s): {rate:,.0f} events/s"
        )
    return Limits(jetstream, copy, stalled)


# -- report --------------------------------------------------------------------------------


def describe_cell(r: CellResult) -> str:
    caught = (
        f"caught up {r.caught_up_s:.1f} s after the load"
        if r.caught_up_s is not None
        else "NOT caught up within the drain timeout"
    )
    lines = [
        f"  sustained: {r.events_per_s:,.0f} events/s over {r.seconds:g} s "
        f"({r.concurrency} clients); batch p50 {r.p50_ms:.0f} ms, p99 {r.p99_ms:.0f} ms",
        f"  lag (events not yet through every consumer): max {r.max_lag:,}, at the end of the load "
        f"{r.final_lag:,} (growing {r.lag_growth_per_s:,.0f}/s; not yet copied: max "
        f"{r.max_archive_lag:,}); {caught}: {r.end_to_end_per_s:,.0f} events/s end to end",
        f"  at half rate ({r.half_rate_per_s:,.0f} events/s, open loop): batch p50 "
        f"{r.half_p50_ms:.0f} ms, p99 {r.half_p99_ms:.0f} ms",
        "  cores busy during the load: "
        + ", ".join(f"{k} {v:.2f}" for k, v in r.cores_during_load.items())
        + f"; CPU per event: API {r.api_cpu_us_per_event:.0f} us, workers "
        f"{r.worker_cpu_us_per_event:.0f} us",
        f"  JetStream append in the API: {r.append_ms:.0f} ms per request on average; "
        + "; ".join(
            f"{stage}: {f['events_per_batch']:.0f} events/batch, {f['ms_per_batch']:.0f} ms/batch"
            for stage, f in r.stages.items()
        ),
    ]
    if r.takeovers_during_load:
        lines.append(f"  note: {r.takeovers_during_load} partition takeover(s) during the load")
    return "\n".join(lines)


def ratio(value: float, limit: float | None) -> str:
    return f"{value / limit:.2f}" if limit else "-"


def table(results: Sequence[CellResult], limits: Limits | None) -> str:
    head = (
        "| API x workers | sustained events/s | p50 / p99 ms | max / final lag | caught up "
        "| end to end events/s | half rate p50 / p99 ms | / JetStream (N conns) | / COPY |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in results:
        caught = f"{r.caught_up_s:.1f} s" if r.caught_up_s is not None else "no"
        js = limits.jetstream.get(r.apis) if limits else None
        copy = limits.copy[1] if limits else None
        lines.append(
            f"| {r.apis} x {r.workers} | {r.events_per_s:,.0f} | {r.p50_ms:.0f} / "
            f"{r.p99_ms:.0f} | {r.max_lag:,} / {r.final_lag:,} | {caught} | "
            f"{r.end_to_end_per_s:,.0f} | {r.half_p50_ms:.0f} / {r.half_p99_ms:.0f} | "
            f"{ratio(r.events_per_s, js)} | {ratio(r.end_to_end_per_s, copy)} |"
        )
    return "\n".join(lines)


def polku_under_test() -> str:
    """Which Polku the processes run: the source folder, and its commit when it is this
    repository's (run another with PYTHONPATH=<folder>/src; the children inherit it)."""
    src = Path(polku.__file__).resolve().parents[1]
    if src != ROOT / "src":
        return str(src)
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    changed = " with uncommitted changes in src/" if dirty.stdout.strip() else ""
    return f"{src} at {commit.stdout.strip()}{changed}"


def parse_cells(raw: str) -> list[tuple[int, int]]:
    cells = []
    for part in raw.split(","):
        found = re.fullmatch(r"\s*(\d+)x(\d+)\s*", part)
        if found is None:
            raise argparse.ArgumentTypeError(f"a cell is APIxWORKERS, like 2x4; got {part!r}")
        cells.append((int(found.group(1)), int(found.group(2))))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cells",
        type=parse_cells,
        default=[(a, w) for a in COUNTS for w in COUNTS],
        help="API processes x workers, comma-separated (default: 1x1,1x2,...,4x4)",
    )
    parser.add_argument("--seconds", type=float, default=12, help="closed-loop load per cell")
    parser.add_argument("--half-seconds", type=float, default=6, help="open loop at half rate")
    parser.add_argument(
        "--drain-timeout", type=float, default=30, help="longest wait for the workers after"
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="requests in flight (default max(8, 4 x API))"
    )
    parser.add_argument("--partitions", type=int, default=16, help="POLKU_PARTITIONS")
    parser.add_argument(
        "--lease-seconds", type=float, default=6, help="POLKU_LEASE_SECONDS (quick balancing)"
    )
    parser.add_argument(
        "--limit-in-flight", type=int, default=8, help="batches in flight per limit connection"
    )
    parser.add_argument("--no-limits", action="store_true", help="skip the two limits")
    parser.add_argument(
        "--postgres", default=POSTGRES_URL, help="PostgreSQL (a database is made on its server)"
    )
    parser.add_argument("--nats", default=NATS_URL, help="NATS with JetStream")
    parser.add_argument("--profile", type=Path, help="py-spy api-1 and worker-1 into this folder")
    parser.add_argument("--logs", type=Path, help="keep each process's output in this folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    print(banner("ingest benchmark, production mode"))
    print(f"polku: {polku_under_test()}")
    print(
        f"PostgreSQL ({args.postgres.split('@')[-1]}) and NATS JetStream ({args.nats}) run on "
        f"this same {os.cpu_count()}-core machine, with the API processes, the workers and "
        "the load client"
    )
    bodies = make_bodies(int(args.seconds * 250 + args.half_seconds * 125) + 50)
    size = statistics.mean(len(b) for b in bodies) / BATCH
    print(f"events: batches of {BATCH}, mean {size:.0f} bytes/event, {len(bodies)} batches ready")
    print(
        f"settings: {args.partitions} partitions, worker batch 500, lease {args.lease_seconds:g} "
        f"s; {args.seconds:g} s closed loop per cell, round-robin over the API processes"
    )

    limits = None if args.no_limits else measure_limits(args)
    results = []
    for apis, workers in args.cells:
        print(f"cell {apis} API process(es) x {workers} worker(s):", flush=True)
        began = time.perf_counter()
        result = run_cell(args, apis, workers, bodies)
        print(describe_cell(result), flush=True)
        print(f"  (the cell took {time.perf_counter() - began:.0f} s)", flush=True)
        results.append(result)

    print()
    print(table(results, limits))
    if limits is not None:
        print(
            "ratios: sustained ingest / plain JetStream publish with as many connections as API "
            f"processes; end to end / one-connection COPY ({limits.copy[1]:,.0f} events/s)"
        )
    if args.json:
        payload = {
            "machine": describe(),
            "event_bytes": round(size),
            "polku": polku_under_test(),
            "limits": asdict(limits) if limits else None,
            "cells": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
