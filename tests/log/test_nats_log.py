"""The NATS JetStream log backend, against the real NATS server.

Each test gets its own stream and subject prefix, deleted afterwards. The server is the one at
POLKU_TEST_NATS_URL (default: the local server); under CI=true an unreachable server fails the
test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from conftest import NATS_URL, require_nats
from polku.errors import Unavailable
from polku.events import LoggedEvent, NewEvent
from polku.log.nats import NatsLog, partition_of
from polku.log.sql import SqlLog
from polku.settings import Settings
from polku.storage.engine import make_engine
from polku.storage.migrate import upgrade


async def _stream_config(name: str) -> StreamConfig:
    nc = await nats.connect(NATS_URL)
    try:
        info = await nc.jetstream().stream_info(name)
    finally:
        await nc.close()
    return info.config


async def _subject_counts(name: str) -> dict[str, int]:
    nc = await nats.connect(NATS_URL)
    try:
        info = await nc.jetstream().stream_info(name, subjects_filter=">")
    finally:
        await nc.close()
    return dict(info.state.subjects or {})


async def _delete_stream(name: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(name)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


@pytest.fixture
def stream_names() -> Iterator[tuple[str, str]]:
    """A fresh (stream name, subject prefix), with the stream deleted after the test."""
    require_nats()
    tag = uuid.uuid4().hex[:12]
    name = f"TEST_{tag}"
    try:
        yield name, f"t{tag}.events"
    finally:
        asyncio.run(_delete_stream(name))


@pytest.fixture
def log(stream_names: tuple[str, str]) -> Iterator[NatsLog]:
    name, prefix = stream_names
    nats_log = NatsLog(NATS_URL, stream=name, subject_prefix=prefix, partitions=4)
    asyncio.run(nats_log.ensure_stream())
    try:
        yield nats_log
    finally:
        nats_log.close()


def _event(n: int, *, customer: str = "cust-1", workspace: str = "ws1", **kw: object) -> NewEvent:
    fields: dict[str, object] = {
        "workspace_id": workspace,
        "message_id": f"msg-{n}",
        "type": "track",
        "partition_key": customer,
        "received_at": 1_700_000_000_000 + n,
        "timestamp": 1_699_999_999_000 + n,
        "payload": b'{"event":"Product Viewed","n":%d}' % n,
        "source_id": "web",
        "event": "Product Viewed",
    }
    fields.update(kw)
    return NewEvent(**fields)  # type: ignore[arg-type]


def _as_logged(offset: int, e: NewEvent) -> LoggedEvent:
    return LoggedEvent(offset=offset, **dataclasses.asdict(e))


def _number(e: LoggedEvent) -> int:
    return int(e.message_id.split("-")[-1])


def test_partition_of_a_customer_never_changes() -> None:
    # Pinned: a different hash would move customers to other subjects in a live stream.
    assert [partition_of(k, 16) for k in ("customer-1", "", "anon-42")] == [13, 4, 4]
    assert {partition_of(f"c{i}", 16) for i in range(200)} == set(range(16))
    assert partition_of("customer-1", 1) == 0


def test_append_then_read_back_in_order_with_every_field(log: NatsLog) -> None:
    events = [
        _event(1),
        _event(2, type="identify", event=None, source_id=""),
        _event(3, workspace="työtila ä.b", customer="asiakas ö"),  # not a subject token
        _event(4, payload=b"\xff\xfe not UTF-8"),
        _event(5, message_id="id with\nnewline and ünicode"),
    ]
    assert log.head() == 0
    head = log.append_sync(events)

    assert head == 5
    assert log.read(0, 100) == [_as_logged(i + 1, e) for i, e in enumerate(events)]
    assert [e.offset for e in log.read(2, 2)] == [3, 4]
    assert log.read(5, 100) == []
    assert log.read(0, 1)[0].message == {"event": "Product Viewed", "n": 1}


def test_same_workspace_and_message_id_is_stored_once(log: NatsLog) -> None:
    first = log.append_sync([_event(1), _event(2)])
    again = log.append_sync([_event(1, payload=b'{"retry":true}')])
    other_workspace = log.append_sync([_event(1, workspace="ws2")])

    assert (first, again, other_workspace) == (2, 1, 3)  # a duplicate acks the original
    stored = log.read(0, 100)
    assert [(e.workspace_id, e.message_id) for e in stored] == [
        ("ws1", "msg-1"),
        ("ws1", "msg-2"),
        ("ws2", "msg-1"),
    ]
    assert stored[0].payload == _event(1).payload  # the first copy wins
    assert log.head() == 3


def test_one_customers_events_stay_in_order_across_concurrent_appends(
    log: NatsLog, stream_names: tuple[str, str]
) -> None:
    customers = [f"customer-{c}" for c in range(12)]
    per_customer = 40

    async def send_group(group: list[str]) -> list[int]:
        # Each append interleaves the group's customers; the next starts after it returned.
        heads = []
        for chunk in range(0, per_customer, 10):
            batch = [
                _event(n, customer=c, message_id=f"{c}-{n}")
                for n in range(chunk, chunk + 10)
                for c in group
            ]
            heads.append(await log.append(batch))
        return heads

    async def send() -> list[int]:
        # Six groups of two customers append at the same time, over one connection.
        groups = [customers[i : i + 2] for i in range(0, len(customers), 2)]
        results = await asyncio.gather(*(send_group(g) for g in groups))
        return [head for heads in results for head in heads]

    heads = asyncio.run(send())
    stored = log.read(0, 10_000)

    assert len(stored) == len(customers) * per_customer
    assert max(heads) == log.head() == stored[-1].offset
    for c in customers:
        numbers = [_number(e) for e in stored if e.partition_key == c]
        assert numbers == list(range(per_customer)), c
    # Each customer's events sit on the one subject its partition key hashes to.
    expected = Counter(log.subject("ws1", c) for c in customers for _ in range(per_customer))
    assert asyncio.run(_subject_counts(stream_names[0])) == dict(expected)
    assert len(expected) > 1  # the customers really were spread over partitions


def test_head_follows_appends_and_listeners_hear_of_them(log: NatsLog) -> None:
    heard: list[int] = []
    log.subscribe(heard.append)

    assert log.head() == 0
    assert log.append_sync([_event(1), _event(2)]) == 2
    assert asyncio.run(log.append([_event(3)])) == 3
    assert log.append_sync([]) == 3

    assert log.head() == 3
    assert heard == [2, 3, 3]


def test_unreachable_server_raises_unavailable() -> None:
    closed = NatsLog("nats://127.0.0.1:1", connect_timeout=0.5, request_timeout=1)
    try:
        calls: list[Callable[[], object]] = [
            lambda: closed.append_sync([_event(1)]),
            lambda: asyncio.run(closed.append([_event(1)])),
            lambda: closed.read(0, 10),
            closed.head,
            lambda: asyncio.run(closed.ensure_stream()),
        ]
        for call in calls:
            with pytest.raises(Unavailable) as caught:
                call()
            assert caught.value.status == 503
            assert caught.value.retry_after > 0
            assert "127.0.0.1:1" in caught.value.message
            assert caught.value.hint
    finally:
        closed.close()
    with pytest.raises(Unavailable, match="shutting down"):
        closed.head()


def test_missing_stream_is_unavailable_with_a_hint(stream_names: tuple[str, str]) -> None:
    name, prefix = stream_names  # never created
    unconfigured = NatsLog(NATS_URL, stream=name, subject_prefix=prefix, request_timeout=2)
    try:
        with pytest.raises(Unavailable) as caught:
            unconfigured.append_sync([_event(1)])
        assert "polku migrate" in (caught.value.hint or "")
        with pytest.raises(Unavailable):
            unconfigured.head()
    finally:
        unconfigured.close()


def test_ensure_stream_is_idempotent_and_applies_its_limits(
    stream_names: tuple[str, str],
) -> None:
    name, prefix = stream_names
    first = NatsLog(NATS_URL, stream=name, subject_prefix=prefix, max_age=3600, duplicate_window=30)
    try:
        asyncio.run(first.ensure_stream())
        first.append_sync([_event(1)])
        asyncio.run(first.ensure_stream())
        config = asyncio.run(_stream_config(name))
        assert config.subjects == [f"{prefix}.>"]
        assert config.retention == RetentionPolicy.LIMITS
        assert config.storage == StorageType.FILE
        assert config.num_replicas == 1
        assert (config.max_age, config.duplicate_window) == (3600, 30)
        assert first.head() == 1  # re-applying kept the events
    finally:
        first.close()

    changed = NatsLog(
        NATS_URL, stream=name, subject_prefix=prefix, max_age=7200, duplicate_window=60
    )
    try:
        asyncio.run(changed.ensure_stream())
        config = asyncio.run(_stream_config(name))
        assert (config.max_age, config.duplicate_window) == (7200, 60)
        assert changed.read(0, 10)[0].message_id == "msg-1"
    finally:
        changed.close()


def test_append_sync_from_plain_threads(log: NatsLog) -> None:
    heads: list[int] = []
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for n in range(5):
                heads.append(
                    log.append_sync(
                        [_event(t * 100 + n * 10 + i, customer=f"c{t}") for i in range(10)]
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert errors == []
    assert len(heads) == 30
    stored = log.read(0, 1000)
    assert [e.offset for e in stored] == list(range(1, 301))
    assert max(heads) == log.head() == 300
    for t in range(6):
        numbers = [_number(e) for e in stored if e.partition_key == f"c{t}"]
        assert numbers == sorted(numbers) and len(numbers) == 50


def test_sql_and_nats_logs_give_the_same_events(log: NatsLog, tmp_path: Path) -> None:
    engine = make_engine(Settings.build(data_dir=tmp_path))
    upgrade(engine)
    sql = SqlLog(engine)
    batches = [
        [_event(n, customer=f"c{n % 3}") for n in range(1, 8)],
        [_event(2), _event(8, type="identify", event=None)],  # msg-2 again: dropped by both
        [_event(9, workspace="ws2", source_id="", payload=b'{"k":"\xc3\xa4"}')],
    ]
    try:
        sql_heads = [sql.append_sync(batch) for batch in batches]
        nats_heads = [log.append_sync(batch) for batch in batches]
        from_sql = sql.read(0, 100)
        from_nats = log.read(0, 100)
        assert log.read(4, 3) == sql.read(4, 3)
    finally:
        sql.close()
        engine.dispose()

    assert len(from_nats) == 9
    assert from_nats == from_sql
    assert nats_heads == sql_heads == [7, 8, 9]
