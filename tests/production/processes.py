"""Real `polku serve` and `polku worker` processes for fault tests: start, kill, stop, restart.

Each process is the installed `polku` console script, exactly as an operator runs it,
configured through ``POLKU_*`` environment variables only (the developer's own are removed
first). A `Deployment` is one production-mode Polku: a PostgreSQL database, a JetStream
stream and subject prefix of its own on a NATS server, 4 partitions and 2-second leases (so
a takeover is quick), and the processes started for it. `deployment()` runs `polku migrate`
first (the production mode does not migrate by itself), stops every process on the way
out, deletes the stream from the machine's shared NATS, and adds each process's output to
the exception of a failing test, as `polku_servers` and `nats_servers` do.

The deployment also reads its database straight through SQLAlchemy (which messageIds are in
`log_events`, who owns which partition, where the checkpoints are), so tests check what was
stored, not what the API says about it.

Imported as ``from processes import ...`` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import nats
import nats.js.errors
import pytest
from servers import free_port
from sqlalchemy import Engine, create_engine, func, select

from polku.identity.identifiers import IdentityConfig
from polku.identity.tables import event_profiles
from polku.log.tables import checkpoints, leases, log_events, workers
from polku.profiles.tables import profiles
from polku.runtime import consumers

__all__ = [
    "POLKU",
    "ApiProcess",
    "Deployment",
    "PolkuProcess",
    "WorkerProcess",
    "deployment",
    "wait_until",
]

POLKU = Path(sys.executable).with_name("polku")
"""The `polku` console script of the environment the tests run in (.venv/bin/polku)."""

NOTE_LIMIT = 20_000  # characters of a process's output added to a failing test's report
P = TypeVar("P", bound="PolkuProcess")


def wait_until(check: Callable[[], Any], timeout: float, what: str, *, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy and return that; after `timeout` s
    fail with `what` (and the last value seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout} s (last: {value!r})")
        time.sleep(every)


class PolkuProcess:
    """One `polku` command as a child process, its output appended to `log_path`."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._offset = 0  # where the output of the current run begins in the log
        self._log_file: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} never started"
        return self.process.pid

    def logs(self) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text("utf-8", "replace")

    def output(self) -> str:
        """What the current (or last) run printed."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            return log.read().decode("utf-8", "replace")

    def start(self, timeout: float = 60.0) -> None:
        """Start the process and return once it is ready (see `_ready`)."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (see `wait_ready`)."""
        assert not self.running, f"{self.name} is already running (pid {self.pid})"
        command = [str(POLKU), *self.args]
        self._note("$ " + " ".join(command))
        self._offset = self.log_path.stat().st_size
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        self.starts += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the launched process is ready; kill it if it is not within `timeout`."""
        assert self.process is not None, f"{self.name} was never launched"
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} while starting:\n"
                    f"{self.output()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"{self.name} was not ready after {timeout} s and was killed:\n{self.output()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish a request, a batch or a commit."""
        self._signal(signal.SIGKILL, timeout=10.0)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and a clean shutdown; SIGKILL if it takes longer than `timeout`."""
        self._signal(signal.SIGTERM, timeout)

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def _ready(self) -> bool:
        raise NotImplementedError

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        if self.process is not None and self.process.poll() is None:
            self._note(f"sending {sig.name} to pid {self.process.pid}")
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note(f"still running after {timeout} s: sending SIGKILL")
                self.process.kill()
                self.process.wait(timeout=10)
            self._note(f"exited with {self.process.returncode}")
        self._close_log()

    def _note(self, line: str) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} {line}\n".encode())

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class ApiProcess(PolkuProcess):
    """`polku serve` on 127.0.0.1: ready once ``GET /healthz`` answers (it checks no backend).

    The write key and admin token printed on a fresh database are read at the first start
    and kept across restarts (on the same port).
    """

    def __init__(self, name: str, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        env = {**env, "POLKU_HOST": "127.0.0.1", "POLKU_PORT": str(self.port)}
        super().__init__(name, ["serve"], env, log_path)
        self.write_key = ""
        self.admin_token = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client sending events with this API's write key."""
        return httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        super().wait_ready(timeout)
        if not self.write_key:
            output = self.output()
            key = re.search(r"write key:\s+(\S+)", output)
            token = re.search(r"admin token:\s+(\S+)", output)
            if key is None or token is None:
                raise RuntimeError(f"{self.name} printed no write key and admin token:\n{output}")
            self.write_key, self.admin_token = key.group(1), token.group(1)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False


class WorkerProcess(PolkuProcess):
    """`polku worker --id NAME`: ready once it prints ``Polku worker NAME ready``."""

    def __init__(self, name: str, env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(name, ["worker", "--id", name], env, log_path)

    def _ready(self) -> bool:
        return f"Polku worker {self.name} ready" in self.output()


class Deployment:
    """One production-mode Polku made of processes, and reads of its database."""

    def __init__(self, tmp_path: Path, database_url: str, nats_url: str, **settings: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.nats_url = nats_url
        tag = uuid.uuid4().hex[:10]
        self.stream = f"FAULTS_{tag}"
        # Only these settings: none of the developer's POLKU_* variables leaks in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("POLKU_")}
        self.env.update(
            PYTHONUNBUFFERED="1",
            POLKU_DATABASE_URL=database_url,
            POLKU_LOG_URL=nats_url,
            POLKU_NATS_STREAM=self.stream,
            POLKU_NATS_SUBJECT_PREFIX=f"f{tag}.events",
            POLKU_PARTITIONS="4",
            POLKU_LEASE_SECONDS="2",
            POLKU_WORKER_BATCH="100",
        )
        self.env.update({f"POLKU_{name.upper()}": value for name, value in settings.items()})
        self.partitions = int(self.env["POLKU_PARTITIONS"])
        self.lease_seconds = float(self.env["POLKU_LEASE_SECONDS"])
        self.processes: list[PolkuProcess] = []
        self.engine: Engine = create_engine(
            database_url, pool_pre_ping=True, connect_args={"connect_timeout": 3}
        )

    # -- processes -------------------------------------------------------------------------

    def migrate(self, timeout: float = 60.0) -> None:
        """`polku migrate`: the schema, the partitions and the stream."""
        log_path = self.tmp_path / "migrate.log"
        with log_path.open("ab") as log:
            result = subprocess.run(
                [str(POLKU), "migrate"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            output = log_path.read_text("utf-8", "replace")
            raise RuntimeError(f"polku migrate failed with {result.returncode}:\n{output}")

    def api(self, name: str = "api", *, wait: bool = True) -> ApiProcess:
        """Start a `polku serve` and return it; with `wait`, once it is alive."""
        process = ApiProcess(name, self.env, self.tmp_path / f"{name}.log")
        return self._start(process, wait)

    def worker(self, name: str, *, wait: bool = True) -> WorkerProcess:
        """Start a `polku worker` named `name` and return it; with `wait`, once it is ready."""
        process = WorkerProcess(name, self.env, self.tmp_path / f"{name}.log")
        return self._start(process, wait)

    def ready(self, *processes: PolkuProcess, timeout: float = 60.0) -> None:
        """Wait until every one of `processes` (started with ``wait=False``) is ready."""
        for process in processes:
            process.wait_ready(timeout)

    def _start(self, process: P, wait: bool) -> P:
        self.processes.append(process)
        process.launch()
        if wait:
            process.wait_ready()
        return process

    # -- reads, straight from the database -------------------------------------------------

    def message_counts(self) -> Counter[str]:
        """How often each messageId is in `log_events`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(log_events.c.message_id, func.count()).group_by(log_events.c.message_id)
            ).all()
        return Counter({str(message_id): int(count) for message_id, count in rows})

    def owners(self) -> dict[int, str | None]:
        """The owner of each partition's lease (None: free)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(leases.c.partition, leases.c.owner)).all()
        return {int(p): owner for p, owner in rows}

    def live_workers(self) -> dict[str, str]:
        """The workers that heartbeat within the lease time (by the database's clock), and
        the partitions each says it holds. A dead worker's row stays a while, stale."""
        ttl_ms = int(self.lease_seconds * 1000)
        now_ms = func.floor(func.extract("epoch", func.clock_timestamp()) * 1000)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(workers.c.worker_id, workers.c.partitions).where(
                    workers.c.heartbeat_at > now_ms - ttl_ms
                )
            ).all()
        return {str(w): str(p) for w, p in rows}

    def checkpoints(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(checkpoints.c.consumer, checkpoints.c.offset)).all()
        return {str(name): int(offset) for name, offset in rows}

    def archived(self) -> dict[int, int]:
        """How far each partition was copied into `log_events` (its ``archive`` checkpoint)."""
        found = self.checkpoints()
        return {p: found.get(f"archive.p{p}", 0) for p in range(self.partitions)}

    def projected(self) -> bool:
        """Whether every consumer of every partition has processed all that was copied."""
        found = self.checkpoints()
        names = [consumer.name for consumer in consumers(IdentityConfig())]
        return all(
            found.get(f"{name}.p{p}", 0) >= found.get(f"archive.p{p}", 0)
            for p in range(self.partitions)
            for name in names
        )

    def projection_totals(self) -> dict[str, int]:
        """Events copied, events attributed to a profile, and the unmerged profiles' event
        counts: all equal when every event was projected exactly once."""
        with self.engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(log_events)).scalar_one()
            attributed = conn.execute(select(func.count()).select_from(event_profiles)).scalar_one()
            distinct = conn.execute(
                select(func.count(func.distinct(event_profiles.c.offset)))
            ).scalar_one()
            counted = conn.execute(
                select(func.coalesce(func.sum(profiles.c.event_count), 0)).where(
                    profiles.c.merged_into.is_(None)
                )
            ).scalar_one()
        return {
            "events": int(events),
            "event_profiles": int(attributed),
            "distinct_event_offsets": int(distinct),
            "profile_event_counts": int(counted),
        }

    def wait_stored(self, message_ids: set[str], timeout: float) -> Counter[str]:
        """Wait until every one of `message_ids` is in `log_events`; return the counts."""

        def stored() -> Counter[str] | None:
            counts = self.message_counts()
            return counts if all(counts[m] for m in message_ids) else None

        def missing() -> str:
            counts = self.message_counts()
            return f"{sum(1 for m in message_ids if not counts[m])} of {len(message_ids)} missing"

        try:
            counts: Counter[str] = wait_until(stored, timeout, "events copied into PostgreSQL")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {missing()}; archive at {self.archived()}") from None
        return counts

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.engine.dispose()


def _delete_stream(url: str, stream: str) -> None:
    async def run() -> None:
        nc = await asyncio.wait_for(
            nats.connect(url, connect_timeout=2, allow_reconnect=False), timeout=5
        )
        try:
            await asyncio.wait_for(nc.jetstream().delete_stream(stream), timeout=5)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await nc.close()

    asyncio.run(run())


def _report(dep: Deployment, exc: BaseException) -> None:
    if isinstance(exc, pytest.skip.Exception):
        return
    logs = [p.log_path for p in dep.processes]
    migrate_log = dep.tmp_path / "migrate.log"
    for path in [migrate_log, *logs] if migrate_log.exists() else logs:
        output = path.read_text("utf-8", "replace")
        if len(output) > NOTE_LIMIT:
            output = "(...)\n" + output[-NOTE_LIMIT:]
        exc.add_note(f"--- {path.name} ({path}) ---\n{output}")


@contextmanager
def deployment(
    tmp_path: Path, database_url: str, nats_url: str, *, shared_nats: bool, **settings: str
) -> Iterator[Deployment]:
    """A migrated production deployment on `database_url` and `nats_url`; `settings` are
    more POLKU_* values by their lower-case names. On the way out every process is stopped
    and, on the machine's `shared_nats`, the stream is deleted; if the block raised, each
    process's output is added to the exception."""
    dep = Deployment(tmp_path, database_url, nats_url, **settings)
    try:
        try:
            dep.migrate()
            yield dep
        except BaseException as exc:
            _report(dep, exc)
            raise
        finally:
            dep.close()
    finally:
        if shared_nats:
            _delete_stream(nats_url, dep.stream)
