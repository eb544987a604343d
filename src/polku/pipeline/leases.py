"""Sharing the log's partitions among the running workers, through PostgreSQL.

Every worker heartbeats every few seconds, in one transaction that locks the lease rows (one
per partition), so the decisions of all workers are serialised and need no other
coordinator. A worker:

- counts the live workers (a heartbeat within the lease time) and takes its fair share,
  ``ceil(partitions / live workers)``;
- renews the leases it holds, gives back any above its share (highest partitions first, so
  a newcomer gets work at the next heartbeat), and takes free or expired ones up to its
  share, bumping the lease's epoch each time the owner changes.

Time is the database's clock, never the worker's, so machines with skewed clocks agree on
who is alive. A worker that dies stops renewing: after `lease_seconds` its partitions are
free and the others take them. A worker that stops cleanly hands them back at once.

Leases only spread the work; they are not what keeps it exactly-once. A worker that lost a
partition without noticing (a long pause) may still finish a batch, but the checkpoint is
claimed under a lock in the same transaction as the writes (`polku.pipeline.checkpoints`),
so nothing is applied twice, and its JetStream consumer is named by the epoch, so it can
never take messages meant for its successor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql

from polku.errors import PolkuError
from polku.log.tables import leases, workers
from polku.storage.engine import translate_errors, writing

__all__ = [
    "Assignment",
    "Leases",
    "PartitionCountMismatch",
    "check_partitions",
    "ensure_partitions",
    "live_workers",
    "partition_count",
]

_NOW_MS = text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")


class PartitionCountMismatch(PolkuError):
    """This process was configured with another partition count than the log was made with."""

    code = "partition_count_mismatch"


@dataclass(frozen=True, slots=True)
class Assignment:
    """A partition this worker holds, and the epoch of its ownership."""

    partition: int
    epoch: int

    @property
    def consumer_name(self) -> str:
        """The JetStream consumer the owner of this epoch reads the partition with."""
        return f"polku-p{self.partition}-e{self.epoch}"


def partition_count(conn: Connection) -> int:
    """How many partitions the log was made with (0 before `polku migrate` made them)."""
    return int(conn.execute(select(func.count()).select_from(leases)).scalar() or 0)


def ensure_partitions(engine: Engine, count: int) -> None:
    """Make the lease rows for `count` partitions on a fresh database; refuse another count
    on one that has them (events already sit in partitions by the old count)."""
    with translate_errors("preparing the partitions"), writing(engine) as conn:
        existing = partition_count(conn)
        if existing == 0:
            conn.execute(insert(leases), [{"partition": p} for p in range(count)])
        elif existing != count:
            raise PartitionCountMismatch(
                f"The log has {existing} partitions; this process is configured with {count}.",
                field="POLKU_PARTITIONS",
                hint=f"Set POLKU_PARTITIONS={existing} on every API process and worker. The "
                "count is fixed when the stream is first created.",
            )


def check_partitions(engine: Engine, count: int) -> None:
    """Refuse to run with another partition count than the log's (see `ensure_partitions`)."""
    with translate_errors("reading the partitions"), engine.connect() as conn:
        existing = partition_count(conn)
    if existing != count:
        raise PartitionCountMismatch(
            f"The log has {existing} partitions; this process is configured with {count}."
            if existing
            else "The production log is not set up in this database.",
            field="POLKU_PARTITIONS",
            hint=f"Set POLKU_PARTITIONS={existing} on every process."
            if existing
            else "Run `polku migrate` with POLKU_LOG_URL set first.",
        )


def live_workers(conn: Connection, lease_seconds: float) -> list[str]:
    """The workers that heartbeat within the lease time (by the database's clock)."""
    if conn.dialect.name != "postgresql":
        return []
    now = int(conn.execute(_NOW_MS).scalar_one())
    rows = conn.execute(
        select(workers.c.worker_id).where(workers.c.heartbeat_at > now - int(lease_seconds * 1000))
    )
    return [worker_id for (worker_id,) in rows]


class Leases:
    """One worker's view of the partition leases."""

    def __init__(self, engine: Engine, worker_id: str, lease_seconds: float) -> None:
        if engine.dialect.name != "postgresql":
            raise PolkuError(
                "Workers share the log's partitions through PostgreSQL.",
                field="POLKU_DATABASE_URL",
                hint="Set POLKU_DATABASE_URL to a PostgreSQL database for the production mode.",
            )
        self._engine = engine
        self.worker_id = worker_id
        self._ttl = int(lease_seconds * 1000)

    def heartbeat(self) -> dict[int, Assignment]:
        """Renew, give back and take leases; return the partitions this worker holds now."""
        with translate_errors("renewing partition leases"), writing(self._engine) as conn:
            now = int(conn.execute(_NOW_MS).scalar_one())
            self._register(conn, now)
            live = int(
                conn.execute(
                    select(func.count())
                    .select_from(workers)
                    .where(workers.c.heartbeat_at > now - self._ttl)
                ).scalar_one()
            )
            rows = conn.execute(
                select(leases.c.partition, leases.c.owner, leases.c.epoch, leases.c.expires_at)
                .order_by(leases.c.partition)
                .with_for_update()
            ).all()
            share = math.ceil(len(rows) / max(live, 1))
            mine = [r for r in rows if r.owner == self.worker_id]
            surplus = sorted(mine, key=lambda r: r.partition)[share:]
            keep = {r.partition: int(r.epoch) for r in mine if r not in surplus}
            for r in surplus:
                conn.execute(
                    update(leases)
                    .where(leases.c.partition == r.partition)
                    .values(owner=None, expires_at=0)
                )
            for r in rows:
                if len(keep) >= share:
                    break
                if r.owner != self.worker_id and (r.owner is None or r.expires_at <= now):
                    keep[r.partition] = int(r.epoch) + 1
                    conn.execute(
                        update(leases)
                        .where(leases.c.partition == r.partition)
                        .values(owner=self.worker_id, epoch=int(r.epoch) + 1)
                    )
            if keep:
                conn.execute(
                    update(leases)
                    .where(leases.c.partition.in_(list(keep)))
                    .values(expires_at=now + self._ttl)
                )
            conn.execute(
                update(workers)
                .where(workers.c.worker_id == self.worker_id)
                .values(partitions=",".join(str(p) for p in sorted(keep))[:2000])
            )
            # Workers gone for long are forgotten (they no longer count as live anyway).
            conn.execute(delete(workers).where(workers.c.heartbeat_at < now - 100 * self._ttl))
        return {p: Assignment(p, epoch) for p, epoch in sorted(keep.items())}

    def _register(self, conn: Connection, now: int) -> None:
        stmt = postgresql.insert(workers).values(
            worker_id=self.worker_id, started_at=now, heartbeat_at=now, partitions=""
        )
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["worker_id"], set_={"heartbeat_at": now})
        )

    def release(self) -> None:
        """Give back every lease at once and leave (a clean stop)."""
        with translate_errors("releasing partition leases"), writing(self._engine) as conn:
            conn.execute(
                update(leases)
                .where(leases.c.owner == self.worker_id)
                .values(owner=None, expires_at=0)
            )
            conn.execute(delete(workers).where(workers.c.worker_id == self.worker_id))

    def holds(self, assignment: Assignment) -> bool:
        """Whether this worker still holds `assignment` (same partition, same epoch)."""
        with translate_errors("reading partition leases"), self._engine.connect() as conn:
            row = conn.execute(
                select(leases.c.owner, leases.c.epoch).where(
                    leases.c.partition == assignment.partition
                )
            ).first()
        return row is not None and row.owner == self.worker_id and row.epoch == assignment.epoch
