"""The live event debugger's feed: what arrives and what is refused, as it happens.

The producer (the API process that took a request) and the listener (the API process whose
client watches `GET /v1/debugger/live`) are usually different processes behind a load
balancer, so nothing here lives in one process's memory:

- embedded mode (`TableFeed`): the log and the dead letters are tables; a watcher reads
  what is newer than its cursor. Appends in this process wake it at once, and it looks
  again every second anyway, which covers writers in other processes on the same database.
- production mode (`NatsFeed`): the stream's own messages reach core-NATS subscribers too,
  so a watcher subscribes to its workspace's subjects and sees every event the moment
  JetStream takes it, from any API process, with no extra publishing. Rejections are
  published by the refusing process as core-NATS notices (at most once: a watcher that is
  not connected at that moment misses them; `GET /v1/debugger/rejections` has them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, func, select

from polku.collect.tables import dead_letters
from polku.events import LoggedEvent, to_iso
from polku.log.nats import NatsLog, decode
from polku.log.sql import SqlLog, event_from_row
from polku.log.tables import log_events
from polku.storage.engine import translate_errors

__all__ = ["LiveFeed", "NatsFeed", "TableFeed", "event_item", "live_stream"]

_POLL_SECONDS = 1.0
_READ_LIMIT = 500
_QUEUE_LIMIT = 10_000  # a watcher that falls this far behind loses the oldest items
_KEEPALIVE_SECONDS = 15.0


class LiveFeed(Protocol):
    def watch(self, workspace_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(``"event"`` or ``"rejection"``, item) as they happen, from now on; first a
        (``"ready"``, {}) once the watch is in place (anything after it will be seen)."""
        ...

    def rejected(self, workspace_id: str | None, items: list[dict[str, Any]]) -> None:
        """Tell the watchers of `workspace_id` about rejections (called after recording)."""
        ...


def event_item(event: LoggedEvent) -> dict[str, Any]:
    """How the debugger shows an accepted event."""
    message = event.message
    context = message.get("context")
    channel = context.get("channel") if isinstance(context, dict) else None
    return {
        "offset": event.offset,
        "messageId": event.message_id,
        "sourceId": event.source_id,
        "type": event.type,
        "event": event.event,
        "channel": channel if isinstance(channel, str) else None,
        "receivedAt": to_iso(event.received_at),
        "message": message,
    }


class TableFeed:
    """The embedded mode's feed: cursors over `log_events` and `dead_letters`."""

    def __init__(self, engine: Engine, log: SqlLog) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        log.subscribe(lambda _head: self._wake())

    def rejected(self, workspace_id: str | None, items: list[dict[str, Any]]) -> None:
        self._wake()  # they are in the table already; the watchers read them from there

    def _wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        for loop, event in wakers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def watch(self, workspace_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        wake = asyncio.Event()
        waker = (asyncio.get_running_loop(), wake)
        with self._lock:
            self._wakers.add(waker)
        try:
            offset, dead = await asyncio.to_thread(self._cursors)
            yield "ready", {}
            while True:
                wake.clear()  # before reading: an append during the read wakes the next wait
                events, rejections = await asyncio.to_thread(
                    self._newer, workspace_id, offset, dead
                )
                for item in events:
                    offset = max(offset, item["offset"])
                    yield "event", item
                for item in rejections:
                    dead = max(dead, item["id"])
                    yield "rejection", item
                if len(events) < _READ_LIMIT and len(rejections) < _READ_LIMIT:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), _POLL_SECONDS)
        finally:
            with self._lock:
                self._wakers.discard(waker)

    def _cursors(self) -> tuple[int, int]:
        with translate_errors("starting the live feed"), self._engine.connect() as conn:
            offset = conn.execute(select(func.max(log_events.c.offset))).scalar()
            dead = conn.execute(select(func.max(dead_letters.c.id))).scalar()
        return int(offset or 0), int(dead or 0)

    def _newer(
        self, workspace_id: str, offset: int, dead: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with translate_errors("reading the live feed"), self._engine.connect() as conn:
            rows = conn.execute(
                select(log_events)
                .where(log_events.c.offset > offset, log_events.c.workspace_id == workspace_id)
                .order_by(log_events.c.offset)
                .limit(_READ_LIMIT)
            ).all()
            refused = conn.execute(
                select(dead_letters)
                .where(
                    dead_letters.c.id > dead,
                    (dead_letters.c.workspace_id == workspace_id)
                    | dead_letters.c.workspace_id.is_(None),
                )
                .order_by(dead_letters.c.id)
                .limit(_READ_LIMIT)
            ).all()
        events = [event_item(event_from_row(r)) for r in rows]
        rejections = [
            {
                key: value
                for key, value in {
                    "id": r.id,
                    "code": r.code,
                    "message": r.message,
                    "field": r.field,
                    "index": r.batch_index,
                    "messageId": r.message_id,
                    "endpoint": r.endpoint,
                    "receivedAt": to_iso(r.received_at),
                }.items()
                if value is not None
            }
            for r in refused
        ]
        return events, rejections


class NatsFeed:
    """The production mode's feed: core-NATS subscriptions (see the module docstring)."""

    def __init__(self, log: NatsLog) -> None:
        self._log = log

    def rejected(self, workspace_id: str | None, items: list[dict[str, Any]]) -> None:
        if workspace_id is None or not items:
            return  # an unknown write key: no workspace's watchers to tell
        subject = self._log.notice_subject("rejected", workspace_id)
        self._log.publish_notice(subject, orjson.dumps(items))

    async def watch(self, workspace_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(_QUEUE_LIMIT)
        rejections = self._log.notice_subject("rejected", workspace_id)

        def put(subject: str, data: bytes) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((subject, data))

        def deliver(subject: str, data: bytes) -> None:  # on the NATS log's own loop
            loop.call_soon_threadsafe(put, subject, data)

        unsubscribe = await asyncio.to_thread(
            self._log.listen, [self._log.workspace_subjects(workspace_id), rejections], deliver
        )
        try:
            yield "ready", {}
            while True:
                subject, data = await queue.get()
                if subject == rejections:
                    for item in orjson.loads(data):
                        yield "rejection", item
                    continue
                # Core subscribers do not learn the stream sequence; 0 says "not known".
                event = decode(0, data)
                if event.workspace_id == workspace_id:
                    yield "event", event_item(event)
        finally:
            unsubscribe()


async def live_stream(
    feed: AsyncIterator[tuple[str, dict[str, Any]]],
    *,
    limit: int | None = None,
    seconds: float | None = None,
) -> AsyncIterator[bytes]:
    """A feed as a text/event-stream body, with keep-alive comments while it is quiet; ends
    after `limit` items or `seconds`, or when the client goes away (the feed is closed)."""
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue(_QUEUE_LIMIT)

    async def pump() -> None:
        try:
            async for item in feed:
                await queue.put(item)
        finally:
            close = getattr(feed, "aclose", None)  # unsubscribe now, not when collected
            if close is not None:
                await close()
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    sent = 0
    try:
        yield b"retry: 2000\n\n"
        while limit is None or sent < limit:
            wait = _KEEPALIVE_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    break
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if item is None:
                break
            kind, data = item
            yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
            if kind != "ready":
                sent += 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
