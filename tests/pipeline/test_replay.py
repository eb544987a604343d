"""The pipeline's promises: a replay rebuilds the same projections, redelivered events change
nothing twice, and a consumer that fails mid-batch leaves no partial state and stops nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, delete, select

from conftest import Polku
from polku.collect.tables import dead_letters
from polku.events import LoggedEvent, NewEvent
from polku.identity.projection import IdentityConsumer
from polku.identity.queries import event_profile
from polku.identity.tables import event_profiles, identifiers, merge_blocks, merges, profile_ids
from polku.log.base import AppendListener, EventLog
from polku.pipeline.consumer import Apply
from polku.pipeline.runner import Pipeline
from polku.profiles.projection import ProfilesConsumer
from polku.profiles.tables import profiles
from polku.storage.engine import writing

PROJECTIONS: tuple[Table, ...] = (
    profile_ids,
    identifiers,
    event_profiles,
    merges,
    merge_blocks,
    profiles,
)
JSON_COLUMNS = frozenset({"traits", "trait_times", "consent", "channels", "identifiers"})

_clock = itertools.count(1)


def at(minutes_ago: int = 0) -> str:
    """An increasing event time; `minutes_ago` backdates it (a till that was offline)."""
    seconds = next(_clock) * 10 - minutes_ago * 60 + 3600
    return f"2026-05-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def message(kind: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    fields.setdefault("timestamp", at())
    return {"type": kind, **fields}


def send(polku: Polku, *messages: dict[str, Any], settle: bool = True) -> None:
    """Send one batch and (with `settle`) wait until it is projected, so that live processing
    takes the events in known batches (a replay takes them all at once)."""
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages)
    if settle:
        polku.settle()


def workspace(polku: Polku) -> str:
    source = polku.runtime.keys.source(polku.write_key)
    assert source is not None
    return source.workspace_id


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, ordered by primary key, JSON columns parsed (key order of a JSON
    object carries no meaning)."""
    taken: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in PROJECTIONS:
            query = select(table).order_by(*table.primary_key.columns)
            taken[table.name] = [
                tuple(
                    orjson.loads(value) if name in JSON_COLUMNS else value
                    for name, value in row._mapping.items()
                )
                for row in conn.execute(query)
            ]
    return taken


def till(card: str, email: str, receipt: str, *, minutes_ago: int = 0) -> dict[str, Any]:
    return message(
        "track",
        anonymousId="till-5-session",
        event="POS Order Completed",
        timestamp=at(minutes_ago),
        context={"channel": "store", "device": {"id": "till-5", "type": "pos"}},
        properties={
            "store_id": "hki-2",
            "receipt_id": receipt,
            "loyalty_card": card,
            "receipt_email": email,
            "total": 23.9,
            "currency": "EUR",
        },
    )


def a_day_of_events(polku: Polku) -> None:
    """Browsing, logins on two devices, till receipts, a shared kiosk, consent, junk, a wrong
    merge undone through the API, and what happens after it."""
    web = {"channel": "web", "page": {"path": "/"}}
    send(
        polku,
        message("page", anonymousId="anna-laptop", name="Home", context=web),
        message(
            "track",
            anonymousId="anna-laptop",
            event="Product Viewed",
            properties={"product_id": "sku-1", "price": 49.0},
            context=web,
        ),
        message(
            "identify",
            userId="anna",
            anonymousId="anna-laptop",
            traits={
                "email": "Anna@Koti.fi",
                "first_name": "Anna",
                "loyalty_card": "LC-77",
                "consent": {"marketing": {"email": True, "sms": False}},
            },
            context=web,
        ),
    )
    send(
        polku, message("screen", anonymousId="anna-phone", name="Home", context={"channel": "app"})
    )
    send(
        polku,
        message(
            "identify",
            userId="anna",
            anonymousId="anna-phone",
            traits={"phone": "040 765 4321"},
            context={"channel": "app"},
        ),
        message(
            "track",
            userId="anna",
            event="Order Completed",
            properties={"order_id": "o-1", "total": 49.0, "currency": "EUR"},
            context={"channel": "app"},
        ),
    )
    ben_signup = message(
        "identify", anonymousId="ben-laptop", traits={"email": "ben@koti.fi"}, context=web
    )
    send(polku, ben_signup, message("page", anonymousId="ben-laptop", name="Offers", context=web))
    # Ben pays with Anna's card: his receipt email outranks it, so Anna is merged into Ben.
    send(polku, till("LC77", "ben@koti.fi", "r-1"))
    kiosk = {"channel": "store", "device": {"id": "kiosk-1", "type": "kiosk"}}
    send(
        polku,
        message(
            "identify", anonymousId="kiosk-web", traits={"email": "cia@koti.fi"}, context=kiosk
        ),
        message(
            "identify", anonymousId="kiosk-web", traits={"email": "dan@koti.fi"}, context=kiosk
        ),
        message("identify", userId="undefined", anonymousId="junk-1", traits={"email": "null"}),
        message(
            "track",
            userId="anna",
            event="Consent Updated",
            properties={"purpose": "marketing", "channel": "sms", "granted": True},
        ),
    )

    with polku.runtime.engine.connect() as conn:
        ben = event_profile(conn, workspace(polku), ben_signup["messageId"])
    ledger = polku.client.get(f"/v1/profiles/{ben}/merges", headers=polku.admin).json()
    [merge_id] = [m["merge_id"] for m in ledger["merges"] if m["winner_id"] == ben]
    response = polku.client.post(
        f"/v1/identity/merges/{merge_id}/unmerge",
        json={"reason": "family card"},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text

    send(
        polku,
        till("LC-77", "ben@koti.fi", "r-2"),
        till("LC-77", "anna@koti.fi", "r-0", minutes_ago=30),  # late: the till was offline
        message("identify", userId="anna", traits={"first_name": "Anne"}),
    )


# --- replay ----------------------------------------------------------------------------------


def test_replay_rebuilds_the_same_projections(polku: Polku) -> None:
    a_day_of_events(polku)
    before = snapshot(polku.runtime.engine)
    assert len(before["identity_merges"]) == 2
    assert len(before["identity_merge_blocks"]) == 1
    assert len(before["identity_event_profiles"]) == polku.runtime.log.head() - 1  # not the unmerge
    # Anna's phone profile, merged into her laptop's, keeps a row that says where it went.
    merged_into = profiles.c.keys().index("merged_into")
    assert sum(1 for row in before["profiles"] if row[merged_into] is not None) == 1

    processed = polku.runtime.pipeline.replay()

    assert processed > 0
    assert snapshot(polku.runtime.engine) == before
    # The pipeline keeps running after a replay: a new event is projected as before.
    send(polku, message("page", anonymousId="after-replay", name="Home"))
    assert len(snapshot(polku.runtime.engine)["identity_event_profiles"]) == (
        len(before["identity_event_profiles"]) + 1
    )


# --- redelivery ------------------------------------------------------------------------------


class RedeliveringLog:
    """The real log, except that every read also hands back events the reader has already
    processed, as an at-least-once log (NATS JetStream after an ack timeout) may do."""

    def __init__(self, log: EventLog, overlap: int) -> None:
        self._log = log
        self._overlap = overlap

    async def append(self, events: Sequence[NewEvent]) -> int:
        return await self._log.append(events)

    def append_sync(self, events: Sequence[NewEvent]) -> int:
        return self._log.append_sync(events)

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        return self._log.read(max(after - self._overlap, 0), limit + self._overlap)

    def head(self) -> int:
        return self._log.head()

    def subscribe(self, listener: AppendListener) -> None:
        self._log.subscribe(listener)

    def start(self) -> None:
        self._log.start()

    def close(self) -> None:
        self._log.close()


class RacingLog(RedeliveringLog):
    """The real log, except that right after each read another worker processes the same
    events: the read is stale by the time the reader writes."""

    def __init__(self, log: EventLog, rival: Pipeline) -> None:
        super().__init__(log, overlap=0)
        self._rival = rival

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        events = super().read(after, limit)
        self._rival.run_until_caught_up()
        return events


def test_redelivered_events_change_nothing_twice(polku: Polku) -> None:
    a_day_of_events(polku)
    before = snapshot(polku.runtime.engine)
    runtime = polku.runtime
    runtime.pipeline.stop()

    # Everything is processed: running the consumers again finds nothing to do.
    assert runtime.pipeline.run_until_caught_up() == 0
    assert snapshot(runtime.engine) == before

    # A second worker on a log that redelivers everything it has handed out before.
    worker = Pipeline(
        runtime.engine,
        RedeliveringLog(runtime.log, overlap=10_000),
        [IdentityConsumer(runtime.identity), ProfilesConsumer()],
        batch=3,
    )
    worker.run_once()
    assert snapshot(runtime.engine) == before

    send(
        polku,
        message("page", anonymousId="late-1", name="Home"),
        message("track", anonymousId="late-1", event="Cart Viewed"),
        message("identify", anonymousId="late-1", traits={"email": "late@koti.fi"}),
        settle=False,
    )
    worker.run_until_caught_up()
    after = snapshot(runtime.engine)
    assert len(after["identity_event_profiles"]) == len(before["identity_event_profiles"]) + 3
    [late] = [row for row in after["profiles"] if row not in before["profiles"]]
    assert dict(zip(profiles.c.keys(), late, strict=True))["event_count"] == 3
    with runtime.engine.connect() as conn:
        failures = conn.execute(select(dead_letters)).all()
    assert failures == []


# --- a consumer that fails -------------------------------------------------------------------

tripwire_metadata = MetaData()
tripwire_rows = Table(
    "test_tripwire_rows",
    tripwire_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("offset", Integer, nullable=False),
    Column("message_id", String(200), nullable=False),
)


class Tripwire:
    """A consumer that records every event it sees, then fails on events marked `explode`,
    after writing: what a bug half-way through a projection update looks like."""

    name = "tripwire"

    def prepare(self, conn: Connection, events: Sequence[LoggedEvent]) -> Apply:
        def apply(writer: Connection) -> None:
            for event in events:
                writer.execute(
                    tripwire_rows.insert().values(offset=event.offset, message_id=event.message_id)
                )
                if (event.message.get("properties") or {}).get("explode"):
                    raise RuntimeError(f"tripwire tripped by {event.message_id}")

        return apply

    def reset(self, conn: Connection) -> None:
        conn.execute(delete(tripwire_rows))


@pytest.fixture
def tripwired(polku: Polku) -> Iterator[Polku]:
    """The test's Polku with a failing consumer after identity and profiles, stopped: the
    test sends events, then starts the pipeline so that they arrive in one batch."""
    runtime = polku.runtime
    with writing(runtime.engine) as conn:  # BEGIN IMMEDIATE: queue behind the pipeline
        tripwire_metadata.create_all(conn)
    runtime.pipeline.stop()
    runtime.pipeline = Pipeline(
        runtime.engine,
        runtime.log,
        [*runtime.pipeline.consumers, Tripwire()],
        batch=runtime.settings.pipeline_batch,
    )
    try:
        yield polku
    finally:
        runtime.pipeline.stop()


def test_a_consumer_failing_mid_batch_leaves_no_partial_state(
    tripwired: Polku, caplog: pytest.LogCaptureFixture
) -> None:
    polku = tripwired
    batch = [
        message("track", anonymousId="crash-1", event="Product Viewed", properties={"n": n})
        for n in range(5)
    ]
    batch[2]["properties"]["explode"] = True
    send(polku, *batch, settle=False)
    polku.runtime.pipeline.start()
    polku.settle()

    with polku.runtime.engine.connect() as conn:
        seen = (
            conn.execute(select(tripwire_rows.c.message_id).order_by(tripwire_rows.c.id))
            .scalars()
            .all()
        )
    # The five events reached the tripwire as one batch, which failed on the third...
    [failed] = [r for r in caplog.records if "retrying one by one" in r.getMessage()]
    assert failed.getMessage().startswith("consumer tripwire failed on offsets 1..5")
    # ...was rolled back whole, then retried event by event: every event but the poison one
    # is recorded exactly once, and the poison one's write is gone.
    ids = [m["messageId"] for m in batch]
    assert sorted(seen) == sorted(ids[:2] + ids[3:])

    rejections = polku.client.get(
        "/v1/debugger/rejections", params={"code": "pipeline_failed"}, headers=polku.admin
    ).json()["rejections"]
    [poison] = rejections
    assert poison["message_id"] == ids[2]
    assert "tripwire" in poison["message"]

    # The consumers before it were not disturbed, and later events still flow.
    with polku.runtime.engine.connect() as conn:
        profile = event_profile(conn, workspace(polku), ids[2])
    assert profile is not None
    later = [message("page", anonymousId="crash-1", name=f"p{n}") for n in range(2)]
    send(polku, *later)
    with polku.runtime.engine.connect() as conn:
        seen = conn.execute(select(tripwire_rows.c.message_id)).scalars().all()
        assert (
            conn.execute(
                select(profiles.c.event_count).where(profiles.c.profile_id == profile)
            ).scalar()
            == 7
        )
    assert {m["messageId"] for m in later} <= set(seen)
    assert polku.runtime.pipeline.checkpoint("tripwire") == polku.runtime.log.head()


def test_two_workers_never_apply_the_same_events(polku: Polku) -> None:
    a_day_of_events(polku)
    runtime = polku.runtime
    runtime.pipeline.stop()
    rival = Pipeline(
        runtime.engine, runtime.log, [IdentityConsumer(runtime.identity), ProfilesConsumer()]
    )
    worker = Pipeline(
        runtime.engine,
        RacingLog(runtime.log, rival),
        [IdentityConsumer(runtime.identity), ProfilesConsumer()],
    )
    raced = [
        message("page", anonymousId="race-1", name="Home"),
        message("track", anonymousId="race-1", event="Cart Viewed"),
    ]
    send(polku, *raced, settle=False)
    worker.run_until_caught_up()

    with runtime.engine.connect() as conn:
        assert conn.execute(select(dead_letters)).all() == []
        profile = event_profile(conn, workspace(polku), raced[0]["messageId"])
        counted = conn.execute(
            select(profiles.c.event_count).where(profiles.c.profile_id == profile)
        ).scalar()
    assert counted == 2
