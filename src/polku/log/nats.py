"""The log as a NATS JetStream stream (the production mode's backend).

Layout. One stream (default ``POLKU``) holds every event, on the subjects
``<prefix>.<workspace>.<partition>`` (prefix default ``polku.events``). The partition is a
stable hash (BLAKE2b, 8 bytes) of the event's ``partition_key`` modulo ``partitions``
(default 16), so one customer's events always land on one subject, in the order they were
appended, and a later partitioned consumer can take a subject each. A workspace id that is not
a safe subject token (letters, digits, ``_``, ``-``) is replaced by ``x`` and a hash of it;
the envelope still carries the real id. The stream keeps messages on file (``storage=file``)
under ``limits`` retention: they expire after ``max_age`` (default 30 days), with
``replicas`` copies (default 1; use 3 on a cluster).

Offsets are the stream's sequence numbers: global, increasing, assigned by JetStream when it
stores a message. ``head`` is the stream's last sequence.

Messages. The body is an envelope, orjson of a dict with every `NewEvent` field under a short
key (see `_encode`); the payload is embedded as a string (it is UTF-8 JSON; other bytes are
stored as base64 under another key), so a read gives back the exact bytes that were appended.

Deduplication. Each message carries ``Nats-Msg-Id: <workspace>:<messageId>`` (hashed when the
id is not printable ASCII), and JetStream drops a second message with the same id within the
stream's ``duplicate_window`` (default 2 minutes), acknowledging it with the original
sequence. That covers the usual client retry; a retry of the same messageId later than the
window is stored again, and the projections' own messageId idempotency absorbs it.

Appending. ``append`` pipelines the publishes of a batch on one connection with
``publish_async`` (so they reach the server, and the stream, in the batch's order: one
customer's events never overtake each other), then awaits all the acknowledgements together
(``asyncio.gather``). It returns only once JetStream acknowledged every event (stored on
disk by the server), with the highest acknowledged sequence. Any NATS error or a timeout
raises `polku.errors.Unavailable`; events of that batch may have been stored, which is safe
because the client's retry is deduplicated. (A batch made only of duplicates returns the
original sequences' maximum, which may be below the stream's head: the value is always at
least the offset of every event of the batch, which is what callers rely on.)

Reading. ``read(after, limit)`` creates a short-lived ephemeral pull consumer starting at
sequence ``after + 1`` without acknowledgements (``ack_policy=none``, memory storage),
fetches exactly ``min(limit, num_pending)`` messages from it, and deletes it: three round
trips for a whole batch, in stream-sequence order, with no state left on the server. (Batch
direct get would need one round trip but needs nats-server 2.11; per-sequence ``get_msg``
needs one round trip per event.)

Threads. A NatsLog owns one NATS connection, served by a private asyncio loop in a
background thread. The sync methods (``append_sync``, ``read``, ``head``) submit coroutines to
that loop with ``asyncio.run_coroutine_threadsafe`` and wait, so they work from any plain
thread; ``append`` (called on the server's loop) awaits the same future through
``asyncio.wrap_future``. The connection is made on first use and re-made after it closes;
while it is up, nats-py reconnects by itself after a server restart.

Listeners registered with ``subscribe`` are called, in the appending caller's thread, after
each append made through this instance.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from polku.errors import PolkuError, Unavailable
from polku.events import LoggedEvent, NewEvent
from polku.log.base import AppendListener

__all__ = ["NatsLog", "PartitionReader", "decode", "partition_of"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,512}")
_ENVELOPE_VERSION = 1
# Errors of the NATS client and of the network underneath; all of them become Unavailable.
_NATS_ERRORS = (nats.errors.Error, OSError, TimeoutError)


def partition_of(partition_key: str, partitions: int) -> int:
    """The partition of a customer's events: stable across processes, versions and machines."""
    digest = hashlib.blake2b(partition_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


class NatsLog:
    """`EventLog` on a NATS JetStream stream; see the module docstring for the design."""

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        stream: str = "POLKU",
        subject_prefix: str = "polku.events",
        partitions: int = 16,
        max_age: float = 30 * 24 * 3600.0,
        duplicate_window: float = 120.0,
        replicas: int = 1,
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        self._stream = stream
        self._prefix = subject_prefix
        self._partitions = partitions
        self._max_age = max_age
        self._duplicate_window = duplicate_window
        self._replicas = replicas
        self._connect_timeout = connect_timeout
        self._timeout = request_timeout
        self._listeners: list[AppendListener] = []
        self._lock = threading.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Touched only on the private loop:
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._last_error = ""
        self._refused: Unavailable | None = None  # the last failed first connection
        self._refused_at = 0.0

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def partitions(self) -> int:
        return self._partitions

    def partition_subject(self, partition: int) -> str:
        """The subjects of one partition, across workspaces (a consumer's filter)."""
        return f"{self._prefix}.*.{partition}"

    def subject(self, workspace_id: str, partition_key: str) -> str:
        """The subject an event of this workspace and customer is published on."""
        token = _token(workspace_id)
        return f"{self._prefix}.{token}.{partition_of(partition_key, self._partitions)}"

    def workspace_subjects(self, workspace_id: str) -> str:
        """Every partition's subject of one workspace (what a live view listens to)."""
        return f"{self._prefix}.{_token(workspace_id)}.*"

    def notice_subject(self, topic: str, workspace_id: str) -> str:
        """A core-NATS subject for notices between processes (never stored in the stream:
        it lies outside the stream's ``<prefix>.>``)."""
        return f"{self._prefix}_notice.{topic}.{_token(workspace_id)}"

    # -- notices: core NATS, between processes ---------------------------------------------

    def publish_notice(self, subject: str, data: bytes) -> None:
        """Publish on core NATS (at most once, nothing stored), from any thread; a notice
        that cannot be sent is dropped with a log line, never raised."""

        async def publish() -> None:
            try:
                await self._jetstream()
                nc = self._nc
                if nc is not None and nc.is_connected:
                    await nc.publish(subject, data)
            except (*_NATS_ERRORS, Unavailable) as exc:
                logger.debug("notice on %s dropped: %s", subject, exc)

        with contextlib.suppress(Unavailable):  # shutting down
            self._submit(publish)

    def listen(
        self, subjects: Sequence[str], deliver: Callable[[str, bytes], None]
    ) -> Callable[[], None]:
        """Subscribe on core NATS to `subjects`; `deliver(subject, data)` runs on the log's
        loop thread for each message. Returns the function that unsubscribes."""

        async def subscribe() -> list[Any]:
            await self._jetstream()
            assert self._nc is not None

            async def handler(message: Msg) -> None:
                deliver(message.subject, message.data)

            try:
                return [await self._nc.subscribe(s, cb=handler) for s in subjects]
            except _NATS_ERRORS as exc:
                raise self._unavailable("listen to", exc) from exc

        subscriptions = self._wait(self._submit(subscribe))

        def unsubscribe() -> None:
            async def run() -> None:
                for sub in subscriptions:
                    with contextlib.suppress(*_NATS_ERRORS):
                        await sub.unsubscribe()

            with contextlib.suppress(Unavailable):
                self._submit(run)

        return unsubscribe

    # -- the EventLog interface ----------------------------------------------------------

    async def append(self, events: Sequence[NewEvent]) -> int:
        head = await asyncio.wrap_future(self._submit(lambda: self._append(events)))
        self._notify(head)
        return head

    def append_sync(self, events: Sequence[NewEvent]) -> int:
        head = self._wait(self._submit(lambda: self._append(events)))
        self._notify(head)
        return head

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        return self._wait(self._submit(lambda: self._read(after, limit)))

    def head(self) -> int:
        return self._wait(self._submit(self._head))

    def subscribe(self, listener: AppendListener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the private loop and connect, so the first request does not pay for it."""
        self._wait(self._submit(self._jetstream))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._disconnect(), loop).result(self._timeout)
        except Exception:  # closing must not fail; the loop and its sockets go away anyway
            logger.exception("closing the NATS connection failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self._timeout)

    def open_reader(self, partition: int, name: str, start: int) -> PartitionReader:
        """A durable consumer `name` on `partition`, reading in order from sequence `start`.

        An existing consumer of that name is replaced, so reading starts exactly at `start`
        (the caller's checkpoint + 1). See `PartitionReader`.
        """
        reader = PartitionReader(self, partition, name)
        reader.rewind(start)
        return reader

    def delete_consumers(self, prefix: str, *, keep: str = "") -> list[str]:
        """Delete the stream's consumers whose names start with `prefix`, except `keep`
        (those of a partition's earlier owners); return the deleted names."""
        return self._wait(self._submit(lambda: self._delete_consumers(prefix, keep)))

    async def _delete_consumers(self, prefix: str, keep: str) -> list[str]:
        js = await self._jetstream()
        deleted: list[str] = []
        try:
            for info in await js.consumers_info(self._stream):
                name = info.name
                if name.startswith(prefix) and name != keep:
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await js.delete_consumer(self._stream, name)
                    deleted.append(name)
        except _NATS_ERRORS as exc:
            raise self._unavailable("clean up the consumers of", exc) from exc
        return deleted

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the log's private loop from a plain thread (readers use it)."""
        return self._wait(self._submit(make))

    async def ensure_stream(self) -> None:
        """Create the stream, or bring an existing one to this configuration (idempotent).

        `polku migrate` calls it in production mode, as it runs the database migrations.
        """
        await asyncio.wrap_future(self._submit(self._ensure_stream))

    # -- the private loop ----------------------------------------------------------------

    def _submit(self, make: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run the coroutine `make()` on the private loop (started on first use)."""
        with self._lock:
            if self._closed:
                raise Unavailable(
                    "The NATS log is shutting down.", hint="Retry in a few seconds.", retry_after=1
                )
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=_run_loop, args=(self._loop,), name="polku-nats-log", daemon=True
                )
                self._thread.start()
            loop = self._loop

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), loop)

    def _wait(self, future: concurrent.futures.Future[T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("NatsLog's sync methods cannot be called from its own loop")
        return future.result()

    def _notify(self, head: int) -> None:
        for listener in list(self._listeners):
            try:
                listener(head)
            except Exception:  # a listener must never fail an append that succeeded
                logger.exception("log listener failed")

    async def _jetstream(self) -> JetStreamContext:
        if self._js is not None and self._nc is not None and not self._nc.is_closed:
            return self._js
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._js is not None and self._nc is not None and not self._nc.is_closed:
                return self._js
            if self._refused is not None and time.monotonic() - self._refused_at < 1.0:
                raise self._refused  # requests queued behind a failed attempt fail at once
            nc = NatsClient()
            try:
                # nats-py retries a refused first connection forever (it reconnects forever
                # later on too, which is what a long-running server wants): bound the first.
                await asyncio.wait_for(
                    nc.connect(
                        servers=self._servers,
                        name="polku",
                        connect_timeout=max(1, math.ceil(self._connect_timeout)),
                        reconnect_time_wait=1,
                        max_reconnect_attempts=-1,
                        error_cb=self._on_error,
                        disconnected_cb=self._on_disconnected,
                        reconnected_cb=_log_reconnected,
                    ),
                    timeout=self._connect_timeout,
                )
            except _NATS_ERRORS as exc:
                await _close_quietly(nc)
                reason = self._last_error or _describe(exc)
                self._refused_at = time.monotonic()
                self._refused = Unavailable(
                    f"Cannot connect to NATS at {', '.join(self._servers)} within "
                    f"{self._connect_timeout:g} s: {reason}.",
                    hint="Check that nats-server runs with JetStream enabled (-js) and "
                    "that the configured NATS URL points at it; retry in a few seconds.",
                )
                raise self._refused from exc
            self._nc = nc
            self._js = nc.jetstream(timeout=self._timeout)
            return self._js

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = _describe(exc)
        logger.warning("NATS connection error: %s", self._last_error)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            logger.warning("disconnected from NATS; reconnecting")

    async def _disconnect(self) -> None:
        if self._nc is not None:
            await _close_quietly(self._nc)
        self._nc = self._js = None

    # -- the work, on the private loop ---------------------------------------------------

    async def _append(self, events: Sequence[NewEvent]) -> int:
        if not events:
            return await self._head()
        js = await self._jetstream()
        if self._nc is not None and not self._nc.is_connected:
            # nats-py would buffer the publishes until it reconnects and the request would
            # hang until the timeout; refuse at once so the client retries elsewhere or later.
            raise Unavailable(
                f"The connection to NATS is down ({self._last_error or 'reconnecting'}); "
                "nothing was stored.",
                hint="Retry in a few seconds; Polku deduplicates by messageId.",
                retry_after=2,
            )
        acks: list[asyncio.Future[PubAck]] = []
        try:
            # One publish after the other, so the batch reaches the stream in its order; the
            # acknowledgements are awaited together. One timeout covers it all: a
            # `wait_stall` per publish would run each through `asyncio.wait_for`, a task per
            # message, and nats-py would then write nearly every message to the socket on its
            # own (measured: half the throughput, a third of the API's NATS thread in writes).
            async with asyncio.timeout(self._timeout):
                for e in events:
                    acks.append(
                        await js.publish_async(
                            self.subject(e.workspace_id, e.partition_key),
                            _encode(e),
                            wait_stall=None,
                            stream=self._stream,
                            headers={"Nats-Msg-Id": _msg_id(e.workspace_id, e.message_id)},
                        )
                    )
                stored = await asyncio.gather(*acks)
        except _NATS_ERRORS as exc:
            raise self._unavailable("append events to", exc) from exc
        finally:
            for ack in acks:
                ack.cancel()  # no-op when settled; otherwise nobody will ever await it
        return max(ack.seq for ack in stored)

    async def _read(self, after: int, limit: int) -> list[LoggedEvent]:
        if limit <= 0:
            return []
        js = await self._jetstream()
        name = "polku-read-" + uuid.uuid4().hex
        config = ConsumerConfig(
            name=name,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=max(30.0, 3 * self._timeout),  # if our delete never arrives
            mem_storage=True,
            num_replicas=1,
        )
        messages: list[Msg] = []
        try:
            info = await js.add_consumer(self._stream, config)
            wanted = min(limit, info.num_pending or 0)
            if wanted:
                sub = await js.pull_subscribe_bind(consumer=name, stream=self._stream)
                try:
                    while len(messages) < wanted:
                        messages += await sub.fetch(wanted - len(messages), timeout=self._timeout)
                finally:
                    await sub.unsubscribe()
            await js.delete_consumer(self._stream, name)
        except _NATS_ERRORS as exc:
            raise self._unavailable("read events from", exc) from exc
        return [_decode(m.metadata.sequence.stream, m.data) for m in messages]

    async def _head(self) -> int:
        js = await self._jetstream()
        try:
            info = await js.stream_info(self._stream)
        except _NATS_ERRORS as exc:
            raise self._unavailable("read the head of", exc) from exc
        return int(info.state.last_seq)

    async def _ensure_stream(self) -> None:
        js = await self._jetstream()
        config = StreamConfig(
            name=self._stream,
            description="Polku's event log: every event, partitioned by customer.",
            subjects=[f"{self._prefix}.>"],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            max_age=self._max_age,
            storage=StorageType.FILE,
            num_replicas=self._replicas,
            duplicate_window=self._duplicate_window,
        )
        try:
            try:
                await js.stream_info(self._stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(config)
                logger.info("created the NATS stream %s", self._stream)
                return
            await js.update_stream(config)
        except nats.js.errors.APIError as exc:
            if exc.code is not None and exc.code >= 500:
                raise self._unavailable("configure", exc) from exc
            raise PolkuError(
                f"NATS refused the configuration of stream {self._stream}: {_describe(exc)}.",
                hint="Some settings (storage type, a changed subject prefix) cannot be changed "
                "on an existing stream; change them back or migrate the stream by hand.",
            ) from exc
        except _NATS_ERRORS as exc:
            raise self._unavailable("configure", exc) from exc

    def _unavailable(self, action: str, exc: BaseException) -> Unavailable:
        hint = "Retry the request; Polku deduplicates by messageId."
        if isinstance(exc, nats.js.errors.NoStreamResponseError | nats.js.errors.NotFoundError):
            hint = (
                f"The stream {self._stream} may not exist: run `polku migrate`, which creates it."
            )
        return Unavailable(
            f"Could not {action} the NATS stream {self._stream}: {_describe(exc)}.", hint=hint
        )


class PartitionReader:
    """One worker's in-order, gap-free reading of one partition of the log.

    A durable JetStream pull consumer filtered to the partition's subjects, with cumulative
    explicit acknowledgement (`AckPolicy.ALL`: acking a message acks every earlier one, so a
    batch costs one ack). Only the partition's current owner reads it: its name carries the
    owner's lease epoch, so a worker that lost the partition without knowing it can never take
    messages meant for its successor.

    Gap-free: every delivery has a consumer sequence that grows by one per delivery (first
    deliveries and redeliveries alike). A jump means a delivery never reached us (a fetch
    that expired while its messages were on the way, say); `fetch` then returns only the
    unbroken part and `rewind`s to just after it, so nothing is ever skipped. Redeliveries of
    messages already handed out are dropped. After a failed batch the caller `rewind`s to
    its checkpoint + 1 itself.
    """

    def __init__(self, log: NatsLog, partition: int, name: str) -> None:
        self._log = log
        self.partition = partition
        self.name = name
        self.pending = 0  # messages after the last one fetched (the consumer's lag)
        # Touched only on the log's loop:
        self._sub: JetStreamContext.PullSubscription | None = None
        self._last_stream = 0
        self._last_consumer = 0
        self._last_msg: Msg | None = None

    def fetch(self, limit: int, timeout: float) -> list[LoggedEvent]:
        """Up to `limit` events in stream order, waiting up to `timeout` s for the first."""
        return self._log.run(lambda: self._fetch(limit, timeout))

    def ack(self) -> None:
        """Acknowledge everything fetched so far (call once it is committed)."""
        self._log.run(self._ack)

    def rewind(self, start: int) -> None:
        """Read again from stream sequence `start`: the consumer is made anew there."""
        self._log.run(lambda: self._rewind(start))

    def close(self, *, delete: bool = False) -> None:
        """Stop reading; with `delete`, remove the consumer from the server too."""
        self._log.run(lambda: self._close(delete))

    # -- on the log's loop -----------------------------------------------------------------

    async def _rewind(self, start: int) -> None:
        log = self._log
        js = await log._jetstream()
        await self._unsubscribe()
        config = ConsumerConfig(
            durable_name=self.name,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start),
            ack_policy=AckPolicy.ALL,
            ack_wait=60.0,
            max_ack_pending=20_000,
            filter_subject=log.partition_subject(self.partition),
            inactive_threshold=24 * 3600.0,  # an owner that vanished leaves nothing for long
        )
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(log.stream, self.name)
            await js.add_consumer(log.stream, config)
            self._sub = await js.pull_subscribe_bind(durable=self.name, stream=log.stream)
        except _NATS_ERRORS as exc:
            raise log._unavailable("open a reader on", exc) from exc
        self._last_stream = max(0, start - 1)
        self._last_consumer = 0
        self._last_msg = None

    async def _fetch(self, limit: int, timeout: float) -> list[LoggedEvent]:
        if self._sub is None:
            await self._rewind(self._last_stream + 1)
        assert self._sub is not None
        try:
            messages = await self._sub.fetch(limit, timeout=timeout)
        except TimeoutError:
            return []
        except _NATS_ERRORS as exc:
            raise self._log._unavailable("read events from", exc) from exc
        events: list[LoggedEvent] = []
        for message in messages:
            meta = message.metadata
            if meta.sequence.consumer != self._last_consumer + 1:
                logger.warning(
                    "partition %d: delivery %d arrived after %d; reading again from %d",
                    self.partition,
                    meta.sequence.consumer,
                    self._last_consumer,
                    self._last_stream + 1,
                )
                await self._rewind(self._last_stream + 1)
                break
            self._last_consumer = meta.sequence.consumer
            self._last_msg = message
            self.pending = meta.num_pending
            if meta.sequence.stream <= self._last_stream:
                continue  # a redelivery of something handed out before
            self._last_stream = meta.sequence.stream
            events.append(_decode(meta.sequence.stream, message.data))
        for event in events:
            event.partition = self.partition
        return events

    async def _ack(self) -> None:
        message, self._last_msg = self._last_msg, None
        if message is None:
            return
        try:
            await message.ack()
        except _NATS_ERRORS as exc:  # harmless: the messages come again and are dropped then
            logger.warning("partition %d: ack failed: %s", self.partition, _describe(exc))

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(*_NATS_ERRORS):
                await sub.unsubscribe()

    async def _close(self, delete: bool) -> None:
        await self._unsubscribe()
        if delete:
            log = self._log
            with contextlib.suppress(*_NATS_ERRORS):
                js = await log._jetstream()
                await js.delete_consumer(log.stream, self.name)


# -- envelope ----------------------------------------------------------------------------


def _encode(e: NewEvent) -> bytes:
    envelope: dict[str, Any] = {
        "v": _ENVELOPE_VERSION,
        "w": e.workspace_id,
        "s": e.source_id,
        "m": e.message_id,
        "t": e.type,
        "e": e.event,
        "k": e.partition_key,
        "r": e.received_at,
        "ts": e.timestamp,
    }
    try:
        envelope["p"] = e.payload.decode()
    except UnicodeDecodeError:
        envelope["p64"] = base64.b64encode(e.payload).decode()
    return orjson.dumps(envelope)


def decode(offset: int, data: bytes) -> LoggedEvent:
    """An event from a message body of the stream (`offset`: its stream sequence)."""
    return _decode(offset, data)


def _decode(offset: int, data: bytes) -> LoggedEvent:
    envelope = orjson.loads(data)
    payload = envelope["p"].encode() if "p" in envelope else base64.b64decode(envelope["p64"])
    return LoggedEvent(
        offset=offset,
        workspace_id=envelope["w"],
        message_id=envelope["m"],
        type=envelope["t"],
        partition_key=envelope["k"],
        received_at=envelope["r"],
        timestamp=envelope["ts"],
        payload=payload,
        source_id=envelope["s"],
        event=envelope["e"],
    )


def _token(workspace_id: str) -> str:
    """A workspace id as one subject token (hashed when it is not a safe one)."""
    if _SAFE_TOKEN.fullmatch(workspace_id):
        return workspace_id
    return "x" + hashlib.blake2b(workspace_id.encode(), digest_size=8).hexdigest()


def _msg_id(workspace_id: str, message_id: str) -> str:
    """The stream-level dedupe id; a header value must be printable ASCII on one line."""
    plain = f"{workspace_id}:{message_id}"
    if _PRINTABLE_ASCII.fullmatch(plain):
        return plain
    digest = hashlib.blake2b(plain.encode(), digest_size=16).hexdigest()
    return f"blake2b:{digest}"


# -- helpers -----------------------------------------------------------------------------


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _close_quietly(nc: NatsClient) -> None:
    try:
        await nc.close()
    except _NATS_ERRORS:
        logger.debug("error while closing a NATS connection", exc_info=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc).strip() or type(exc).__name__


async def _log_reconnected() -> None:
    logger.info("reconnected to NATS")
