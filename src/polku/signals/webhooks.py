"""Signed webhooks to a CRM: every new signal on an endpoint's queues, retried until taken.

Routing queues one `signal_deliveries` row per endpoint in the transaction that writes the
signal, due at once. `Deliverer` (a chore of the embedded pipeline and of the production
worker holding partition 0) sends what is due on threads of its own: a 2xx answer
delivers it; anything else (or no answer within `timeout`) is logged in
`signal_delivery_attempts` and tried again after 2 s, 8 s, 32 s, ... (four times longer
each time), `MAX_ATTEMPTS` times in all, then marked failed. A delivery is leased (its due
time moved `LEASE_SECONDS` ahead) before it is sent, so two processes never send it at
once, and one that dies mid-send leaves it due again.

Delivery is at-least-once: the receiver deduplicates on the ``Polku-Delivery`` header
(also sent as ``Idempotency-Key``). The signature follows Stripe's scheme::

    Polku-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A receiver recomputes it over the raw body, compares in constant time, and refuses a
timestamp too far from its clock (5 minutes, say) against replays; see docs/signals.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, select, update

from polku.events import to_iso
from polku.log.outbox import Backends
from polku.signals.queries import get_signal
from polku.signals.tables import deliveries, delivery_attempts, webhooks
from polku.storage.engine import translate_errors, writing

__all__ = [
    "EVENT",
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "Deliverer",
    "deliver_due",
    "retry_delay",
    "sign",
    "verify",
]

logger = logging.getLogger(__name__)

EVENT: Final = "signal.routed"
MAX_ATTEMPTS: Final = 8
LEASE_SECONDS: Final = 60
_FIRST_DELAY_MS: Final = 2_000
_USER_AGENT: Final = "Polku-Webhooks/1"
_BATCH: Final = 20


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Polku-Signature`` header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and its timestamp is within `tolerance`."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(attempts: int) -> int:
    """Milliseconds before the next try after `attempts` failed ones: 2 s, 8 s, 32 s, ..."""
    return int(_FIRST_DELAY_MS * 4 ** max(0, attempts - 1))


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: int
    workspace_id: str
    attempts: int
    url: str
    secret: str
    body: bytes


def _lease(conn: Connection, now: int, limit: int) -> list[Any]:
    query = (
        select(deliveries)
        .where(deliveries.c.status == "pending", deliveries.c.due_at <= now)
        .order_by(deliveries.c.due_at, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query).all())
    if rows:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([r.id for r in rows]))
            .values(due_at=now + LEASE_SECONDS * 1000)
        )
    return rows


def _jobs(conn: Connection, rows: list[Any]) -> list[_Job]:
    jobs = []
    for row in rows:
        hook = conn.execute(
            select(webhooks).where(
                webhooks.c.workspace_id == row.workspace_id,
                webhooks.c.endpoint_id == row.endpoint_id,
            )
        ).first()
        signal = get_signal(conn, row.workspace_id, row.signal_id)
        if hook is None or signal is None or not hook.active:
            conn.execute(
                update(deliveries).where(deliveries.c.id == row.id).values(status="failed")
            )
            continue
        body = orjson.dumps(
            {
                "type": EVENT,
                "delivery_id": row.id,
                "created_at": to_iso(row.created_at),
                "signal": signal.as_dict(),
            }
        )
        jobs.append(_Job(row.id, row.workspace_id, row.attempts, hook.url, hook.secret, body))
    return jobs


def _send(job: _Job, timeout: float) -> tuple[int | None, str | None, int]:
    """(status code or None, error, duration in ms) of one POST."""
    timestamp = int(time.time())
    request = urllib.request.Request(
        job.url,
        data=job.body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "Polku-Event": EVENT,
            "Polku-Delivery": str(job.delivery_id),
            "Idempotency-Key": f"polku-delivery-{job.delivery_id}",
            "Polku-Timestamp": str(timestamp),
            "Polku-Signature": sign(job.secret, timestamp, job.body),
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status: int | None = answer.status
            error = None
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"[:500]
    except (OSError, ValueError) as exc:  # refused, timed out, DNS, TLS
        status, error = None, (str(exc) or type(exc).__name__)[:500]
    return status, error, int((time.perf_counter() - started) * 1000)


def _settle(
    conn: Connection, job: _Job, status: int | None, error: str | None, took: int, now: int
) -> None:
    attempt = job.attempts + 1
    conn.execute(
        delivery_attempts.insert().values(
            delivery_id=job.delivery_id,
            attempt=attempt,
            at=now,
            status_code=status,
            error=error,
            duration_ms=took,
        )
    )
    values: dict[str, Any] = {"attempts": attempt}
    if status is not None and 200 <= status < 300:
        values.update(status="delivered", delivered_at=now)
    elif attempt >= MAX_ATTEMPTS:
        values.update(status="failed")
    else:
        values.update(due_at=now + retry_delay(attempt))
    conn.execute(update(deliveries).where(deliveries.c.id == job.delivery_id).values(**values))


def _take(engine: Engine, limit: int) -> list[_Job]:
    now = int(time.time() * 1000)
    with translate_errors("reading due webhooks"), writing(engine) as conn:
        rows = _lease(conn, now, limit)
        return _jobs(conn, rows) if rows else []


def _log(engine: Engine, job: _Job, result: tuple[int | None, str | None, int]) -> None:
    status, error, took = result
    with translate_errors("logging webhook attempts"), writing(engine) as conn:
        _settle(conn, job, status, error, took, int(time.time() * 1000))
    if status is None or not 200 <= status < 300:
        logger.info(
            "webhook delivery %d to %s failed (%s); attempt %d of %d",
            job.delivery_id,
            job.url,
            error,
            job.attempts + 1,
            MAX_ATTEMPTS,
        )


def deliver_due(backends: Backends, *, limit: int = _BATCH, timeout: float = 5.0) -> int:
    """Send the deliveries that are due (at most `limit`, in parallel) and wait for the
    answers; return how many were tried. Safe to run in several processes at once."""
    jobs = _take(backends.engine, limit)
    if not jobs:
        return 0
    with ThreadPoolExecutor(max_workers=min(8, len(jobs)), thread_name_prefix="polku-hook") as pool:
        results = list(pool.map(lambda job: _send(job, timeout), jobs))
    for job, result in zip(jobs, results, strict=True):
        _log(backends.engine, job, result)
    return len(jobs)


class Deliverer:
    """The chore: leases what is due and sends it on threads of its own, so a slow or
    unreachable CRM never holds up the pipeline (or worker) that runs the chore; the lease
    keeps a delivery in flight from being taken again."""

    def __init__(self, backends: Backends, *, workers: int = 4, timeout: float = 5.0) -> None:
        self._backends = backends
        self._workers = workers
        self._timeout = timeout
        self._lock = threading.Lock()
        self._busy = 0
        self._pool: ThreadPoolExecutor | None = None
        self.__name__ = "deliver_webhooks"  # how the pipeline names the chore in its logs

    def __call__(self) -> int:
        """Start sending what is due (at most twice the threads in flight); return how many
        were started."""
        with self._lock:
            room = 2 * self._workers - self._busy
        if room <= 0:
            return 0
        jobs = _take(self._backends.engine, min(room, _BATCH))
        if not jobs:
            return 0
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="polku-hook")
            pool = self._pool
            self._busy += len(jobs)
        for job in jobs:
            pool.submit(self._deliver, job)
        return len(jobs)

    def _deliver(self, job: _Job) -> None:
        try:
            _log(self._backends.engine, job, _send(job, self._timeout))
        except Exception:  # the database went away: the lease runs out, it is due again
            logger.warning(
                "webhook delivery %d: could not log the attempt", job.delivery_id, exc_info=True
            )
        finally:
            with self._lock:
                self._busy -= 1

    def close(self) -> None:
        """Wait for the deliveries in flight (at most the timeout)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
