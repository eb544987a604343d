"""The production mode end to end: the API appends to NATS JetStream, workers copy each
partition into PostgreSQL and project it, sharing the partitions among them.

Real NATS and PostgreSQL (the machine's servers; a stream and a schema of the test's own).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Production, delete_stream, production_settings, running
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from collect.test_live import Watcher
from polku.app import create_app
from polku.errors import PolkuError
from polku.identity.identifiers import IdentityConfig
from polku.identity.tables import event_profiles, identifiers, profile_ids
from polku.log.nats import partition_of
from polku.log.tables import leases, log_events
from polku.pipeline import checkpoints
from polku.pipeline.runner import Pipeline
from polku.pipeline.worker import ARCHIVE, archive
from polku.profiles.tables import profiles
from polku.runtime import Runtime, consumers, migrate, nats_log

pytestmark = pytest.mark.postgres

_clock = itertools.count(1)


def at() -> str:
    seconds = next(_clock)
    return f"2026-06-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def msg(kind: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    fields.setdefault("timestamp", at())
    return {"type": kind, **fields}


@pytest.fixture
def production(postgres_url: str) -> Iterator[Production]:
    with running(production_settings(postgres_url)) as cluster:
        yield cluster


def lookup(cluster: Production, kind: str, value: str) -> dict[str, Any]:
    response = cluster.client.get(
        "/v1/profiles/lookup", params={"type": kind, "value": value}, headers=cluster.admin
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body.pop("matched")  # which identifier found it
    return body


def shopper_day(person: int) -> list[dict[str, Any]]:
    """Anonymous browsing, a login on the app, a till receipt with the loyalty card: under
    three partition keys, so the person's events sit in different partitions."""
    anon, user, till = f"anon-{person}", f"user-{person}", f"till-{person}"
    return [
        msg("page", anonymousId=anon, name="Home", context={"channel": "web"}),
        msg(
            "track",
            anonymousId=anon,
            event="Product Viewed",
            properties={"product_id": f"sku-{person}"},
            context={"channel": "web"},
        ),
        msg(
            "identify",
            userId=user,
            anonymousId=anon,
            traits={"email": f"shopper{person}@kauppa.fi", "loyalty_card": f"LC{person}"},
            context={"channel": "app"},
        ),
        msg(
            "track",
            anonymousId=till,
            event="POS Order Completed",
            properties={
                "store_id": "hki-1",
                "receipt_id": f"R-{person}",
                "loyalty_card": f"LC{person}",
                "total": 59.9,
            },
            context={"channel": "store"},
        ),
    ]


def snapshot(cluster: Production) -> dict[str, list[tuple[Any, ...]]]:
    with cluster.engine.connect() as conn:
        return {
            table.name: sorted(tuple(r) for r in conn.execute(select(table)))
            for table in (log_events, profile_ids, identifiers, event_profiles, profiles)
        }


def test_events_sent_to_the_api_reach_one_profile_per_person_through_a_worker(
    production: Production,
) -> None:
    people = range(12)
    keys = {f"{kind}-{p}" for p in people for kind in ("anon", "user", "till")}
    assert len({partition_of(k, 4) for k in keys}) == 4  # the people span every partition
    production.start_worker("w1")
    for person in people:
        production.send(*shopper_day(person))
    production.settle(events=4 * len(people))

    for person in people:
        found = lookup(production, "anonymous_id", f"anon-{person}")
        assert found == lookup(production, "user_id", f"user-{person}")
        assert found == lookup(production, "loyalty_card", f"LC{person}")
        assert found["event_count"] == 4
        assert set(found["channels"]) == {"web", "app", "store"}
        assert found["traits"]["email"] == f"shopper{person}@kauppa.fi"
    with production.engine.connect() as conn:
        live = conn.execute(
            select(func.count()).select_from(profiles).where(profiles.c.merged_into.is_(None))
        ).scalar_one()
    assert live == len(people)


def test_two_workers_share_the_partitions_and_one_takes_over_when_the_other_stops(
    production: Production,
) -> None:
    first = production.start_worker("w1")
    assert set(first.runners) == {0, 1, 2, 3}
    second = production.start_worker("w2")
    deadline = time.monotonic() + 10
    while not (len(first.runners) == 2 and len(second.runners) == 2):
        assert time.monotonic() < deadline, (set(first.runners), set(second.runners))
        time.sleep(0.05)
    assert set(first.runners) | set(second.runners) == {0, 1, 2, 3}

    for person in range(20):
        production.send(*shopper_day(person))
    production.settle(events=80)

    production.stop_worker("w2")  # a clean stop hands its partitions back at once
    deadline = time.monotonic() + 10
    while set(first.runners) != {0, 1, 2, 3}:
        assert time.monotonic() < deadline, set(first.runners)
        time.sleep(0.05)
    for person in range(20, 30):
        production.send(*shopper_day(person))
    production.settle(events=120)
    for person in range(30):
        assert lookup(production, "user_id", f"user-{person}")["event_count"] == 4
    with production.engine.connect() as conn:
        owners = set(conn.execute(select(leases.c.owner)).scalars())
    assert owners == {"w1"}


def test_a_new_owner_epoch_names_a_new_consumer(production: Production) -> None:
    worker = production.start_worker("w1")
    epochs = {p: r.assignment.epoch for p, r in worker.runners.items()}
    production.stop_worker("w1")
    again = production.start_worker("w1b")
    assert {p: r.assignment.epoch for p, r in again.runners.items()} == {
        p: e + 1 for p, e in epochs.items()
    }
    names = {r.assignment.consumer_name for r in again.runners.values()}
    assert names == {f"polku-p{p}-e{epochs[p] + 1}" for p in range(4)}


def test_redelivered_messages_change_nothing_twice(production: Production) -> None:
    production.start_worker("w1")
    for person in range(10):
        production.send(*shopper_day(person))
    production.settle(events=40)
    production.stop_worker("w1")
    before = snapshot(production)

    # Read every partition again from the start of the stream, as a redelivery after a lost
    # ack or a crash would, and push it through the copy and the consumers once more.
    log = nats_log(production.settings)
    try:
        for p in range(production.settings.partitions):
            reader = log.open_reader(p, f"test-redeliver-{p}", 1)
            events = reader.fetch(1000, timeout=2.0)
            reader.close(delete=True)
            assert events, f"partition {p} is empty"
            assert archive(production.engine, p, events) == max(e.offset for e in events)
            for consumer in consumers(IdentityConfig()):
                Pipeline(
                    production.engine,
                    _Replaying(events),
                    [consumer],
                    scope=f".p{p}",
                    shared=True,
                ).run_once()
    finally:
        log.close()
    assert snapshot(production) == before


class _Replaying:
    """A log that hands the same events out again (a redelivery)."""

    def __init__(self, events: list[Any]) -> None:
        self._events = events

    def read(self, after: int, limit: int) -> list[Any]:
        return self._events[:limit]

    def head(self) -> int:
        return int(self._events[-1].offset)

    def subscribe(self, listener: Any) -> None:
        pass


def test_a_messageid_sent_again_after_the_duplicate_window_is_stored_once(
    postgres_url: str,
) -> None:
    # NATS takes no window shorter than 100 ms.
    settings = production_settings(postgres_url, nats_duplicate_window=0.1)
    with running(settings) as cluster:
        cluster.start_worker("w1")
        first = msg("track", userId="late-retry", event="Cart Viewed")
        cluster.send(first)
        cluster.settle(events=1)
        time.sleep(0.3)  # past the stream's duplicate window: JetStream stores it again
        cluster.send(first)
        cluster.send(msg("track", userId="late-retry", event="Checkout Started"))
        cluster.settle(events=2)
        with cluster.engine.connect() as conn:
            stored = conn.execute(
                select(log_events.c.message_id).where(log_events.c.message_id == first["messageId"])
            ).all()
            p = partition_of("late-retry", 4)
            copied = checkpoints.read(conn, checkpoints.scoped(ARCHIVE, p))
        assert len(stored) == 1
        assert lookup(cluster, "user_id", "late-retry")["event_count"] == 2
        assert copied >= 3  # the stream holds three messages; the copy went past all of them


def test_the_live_feed_of_one_api_process_shows_what_another_one_took(
    production: Production,
) -> None:
    other = Runtime.open(production.settings)
    try:
        with TestClient(create_app(production.settings, other)) as watching:
            watcher = Watcher(watching, production.admin, limit=3, seconds=20)
            assert watcher.ready.wait(20)
            first, second = (
                msg("track", userId="u-live", event="Cart Viewed"),
                msg("page", anonymousId="a-live", name="Home"),
            )
            production.send(first, second)
            response = production.client.post(
                "/v1/track", json={"event": "Nobody"}, auth=(production.write_key, "")
            )
            assert response.status_code == 400
            items = watcher.join()
    finally:
        other.close()
    assert [(kind, data.get("messageId")) for kind, data in items[:2]] == [
        ("event", first["messageId"]),
        ("event", second["messageId"]),
    ]
    assert items[2][0] == "rejection" and items[2][1]["code"]


def test_an_unmerge_across_partitions_counts_every_event_once(production: Production) -> None:
    # The person's two devices hash to different partitions than their userId.
    first, second, user = "dev-a", "dev-b", "user-two-devices"
    assert len({partition_of(k, 4) for k in (first, second, user)}) >= 2
    production.start_worker("w1")
    production.send(msg("page", anonymousId=first, name="Home"))
    production.send(*(msg("page", anonymousId=second, name=f"P{n}") for n in range(2)))
    # Partitions run side by side: both devices must be profiles before the identifies,
    # or the second identify may attach a device identity has not seen yet (no merge).
    production.settle(events=3)
    production.send(msg("identify", userId=user, anonymousId=first))
    production.send(msg("identify", userId=user, anonymousId=second))  # merges the two
    production.settle(events=5)
    merged = lookup(production, "user_id", user)
    assert merged["event_count"] == 5
    merges = production.client.get(
        f"/v1/profiles/{merged['profile_id']}/merges", headers=production.admin
    ).json()["merges"]
    assert len(merges) == 1

    response = production.client.post(
        f"/v1/identity/merges/{merges[0]['merge_id']}/unmerge", headers=production.admin
    )
    assert response.status_code == 200, response.text  # applied, not pending
    # Events sent right after the un-merge land once, on the side identity gives them.
    production.send(msg("page", anonymousId=second, name="After"))
    production.send(msg("track", userId=user, event="Cart Viewed"))
    production.settle(events=8)
    kept, given_back = (
        lookup(production, "user_id", user),
        lookup(production, "anonymous_id", second),
    )
    assert kept["profile_id"] != given_back["profile_id"]
    assert given_back["event_count"] == 3  # its two pages and the one after
    assert kept["event_count"] == 4  # the first device, both identifies, the cart view


def test_migrate_refuses_a_stream_made_anew_behind_the_copied_events(
    production: Production,
) -> None:
    production.start_worker("w1")
    production.send(*shopper_day(1))
    production.settle(events=4)
    production.stop_worker("w1")
    delete_stream(production.settings)  # an operator's mistake: the stream starts again at 1
    with pytest.raises(PolkuError, match="ends at sequence 0") as refused:
        migrate(production.settings)
    assert refused.value.hint is not None and "restore" in refused.value.hint.lower()
