"""Readiness: can this process serve traffic? The state store and the log must both answer.

Each check is a blocking call (a `SELECT 1`, the log's head), so it runs in a thread, and the
probe waits at most the timeout for it. A thread stuck on a hung database cannot be
cancelled; instead a check still running from an earlier probe is awaited again rather than
started twice, so a probe every few seconds against a dead server holds one thread per
check, not one more per probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from polku.errors import PolkuError, Unavailable
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = ["CheckResult", "Readiness", "not_ready"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome: `error` says what went wrong, None when it answered in time."""

    name: str
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ok" if self.ok else "failed",
            "seconds": round(self.seconds, 4),
        }
        if self.error is not None:
            body["error"] = self.error
        return body


class Readiness:
    """The readiness checks of one app; keeps track of checks still running."""

    def __init__(self) -> None:
        # name -> (the check's task, when it started)
        self._running: dict[str, tuple[asyncio.Task[None], float]] = {}

    async def check(self, runtime: Runtime, timeout: float) -> list[CheckResult]:
        """Run every check concurrently, each bounded by `timeout` seconds."""
        return list(
            await asyncio.gather(
                self._run("store", lambda: _select_one(runtime), timeout),
                self._run("log", runtime.log.head, timeout),
            )
        )

    async def _run(self, name: str, call: Callable[[], object], timeout: float) -> CheckResult:
        start = time.perf_counter()
        error: str | None = None
        task, started = self._running.get(name, (None, start))
        if task is None or task.done():
            task, started = asyncio.create_task(_in_thread(call)), start
            # Retrieve the outcome even when every probe has stopped waiting for it, so a
            # late failure is not reported as "exception never retrieved".
            task.add_done_callback(_retrieve)
            self._running[name] = (task, started)
        try:
            # shield: a timeout abandons the wait, not the task the next probe may reuse.
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
            if started < start:
                error += f" (the check has been waiting {time.perf_counter() - started:.1f} s)"
        except PolkuError as exc:
            error = exc.message
        except Exception as exc:  # any failure means not ready; say which and why
            logger.warning("readiness check %s failed", name, exc_info=exc)
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            error = " ".join(error.split())  # driver messages span lines; keep one
        return CheckResult(name, time.perf_counter() - start, error)


async def _in_thread(call: Callable[[], object]) -> None:
    await asyncio.to_thread(call)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _select_one(runtime: Runtime) -> None:
    with translate_errors("checking readiness"), runtime.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def not_ready(results: list[CheckResult]) -> Unavailable | None:
    """The error to answer with when a check failed, naming each failed check and why."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    what = {"store": "the state store", "log": "the event log"}
    return Unavailable(
        "Not ready: " + "; ".join(f"{what.get(r.name, r.name)}: {r.error}" for r in failed),
        code="not_ready",
        hint="Check that the database (and NATS, in production mode) is running and "
        "reachable from this process; traffic returns once every check passes.",
    )
