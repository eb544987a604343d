"""The official Segment Python SDK, unpatched, against a real `polku serve`.

Only the SDK's own settings change: `host`, `write_key`, `gzip=True`, and either
`sync_mode` (one request per call) or the background consumer with `flush()` (batches).
Then every call must be in the log once and on the one profile of the person who made it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from segment.analytics.client import Client
from sqlalchemy import select

from polku.identity.tables import event_profiles, identifiers
from polku.log.tables import log_events
from polku.settings import Settings
from polku.storage.engine import make_engine
from polku_server import PolkuServer, polku_servers

pytestmark = pytest.mark.slow


def _settle(server: PolkuServer, events: int, timeout: float = 15.0) -> None:
    """Wait until the log holds `events` and the pipeline has projected all of them."""
    deadline = time.monotonic() + timeout
    while True:
        health = httpx.get(f"{server.url}/health").json()
        if health["log_head"] >= events and health["pipeline_position"] >= health["log_head"]:
            return
        assert time.monotonic() < deadline, f"pipeline did not catch up: {health}"
        time.sleep(0.05)


def _journey(client: Client, user: str, anon: str) -> list[dict[str, Any]]:
    """A shopper browses anonymously, signs up, is aliased, buys, and joins a household."""
    calls = [
        client.page(
            anonymous_id=anon,
            category="Talvitakit",
            name="Product",
            properties={"url": "https://kauppa.fi/p/parka", "title": "Parka"},
        ),
        client.track(
            anonymous_id=anon,
            event="Product Viewed",
            properties={"product_id": "parka-42", "price": 249.0, "currency": "EUR"},
        ),
        client.identify(
            user_id=user,
            traits={"email": f"{user}@kauppa.fi", "name": "Aino Virtanen"},
        ),
        client.alias(previous_id=anon, user_id=user),
        client.track(
            user_id=user,
            event="Order Completed",
            properties={
                "order_id": f"o-{user}",
                "total": 249.0,
                "currency": "EUR",
                "products": [{"product_id": "parka-42", "price": 249.0, "quantity": 1}],
            },
        ),
        client.group(user_id=user, group_id=f"household-{user}", traits={"name": "Virtanen"}),
    ]
    for queued, message in calls:
        assert queued, message
    return [message for _, message in calls]


def _deliver(server: PolkuServer, sync_mode: bool, calls: Callable[[Client], list[Any]]) -> None:
    """Make `calls` with an SDK client configured only through its public options."""
    errors: list[str] = []
    client = Client(
        write_key=server.write_key,
        host=server.url,
        gzip=True,
        sync_mode=sync_mode,
        max_retries=2,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append(f"{error!r} {batch!r}"),
    )
    try:
        calls(client)
        client.flush()
    finally:
        if not sync_mode:  # in sync mode the SDK has no consumer threads to join
            client.shutdown()
    assert errors == []


@pytest.mark.parametrize("sync_mode", [True, False], ids=["sync", "batched"])
def test_python_sdk_calls_land_on_the_right_profile(tmp_path: Path, sync_mode: bool) -> None:
    user, anon = f"user-{uuid.uuid4().hex[:8]}", f"anon-{uuid.uuid4()}"
    other_user = f"user-{uuid.uuid4().hex[:8]}"
    sent: list[dict[str, Any]] = []

    def calls(client: Client) -> list[Any]:
        sent.extend(_journey(client, user, anon))
        # Someone else on the same server must stay a different person.
        queued, other = client.track(
            user_id=other_user, event="Store Visited", properties={"store_id": "HEL-01"}
        )
        assert queued
        sent.append(other)
        return sent

    with polku_servers(tmp_path) as start:
        server = start()
        _deliver(server, sync_mode, calls)
        _settle(server, len(sent))
        owners, rows = _read_projection(server, [user, anon, f"{user}@kauppa.fi", other_user], sent)

    journey, other = sent[:-1], sent[-1]
    # One profile holds the user id, the browser's anonymous id (joined by alias) and the email.
    profile = owners[user]
    assert owners[anon] == profile
    assert owners[f"{user}@kauppa.fi"] == profile
    assert owners[other_user] != profile

    by_id = {row.message_id: row for row in rows}
    assert len(rows) == len(sent), "every SDK call is in the log and resolved, once"
    assert sorted(by_id) == sorted(m["messageId"] for m in sent)
    for message in journey:
        row = by_id[message["messageId"]]
        assert row.type == message["type"]
        assert row.profile_id == profile, f"{message['type']} landed on {row.profile_id}"
    assert {m["type"] for m in journey} == {"page", "track", "identify", "alias", "group"}
    assert by_id[other["messageId"]].profile_id == owners[other_user]

    stored = orjson.loads(by_id[journey[0]["messageId"]].payload)
    assert stored["context"]["library"]["name"] == "analytics-python"
    assert stored["receivedAt"].endswith("Z")
    assert stored["properties"]["title"] == "Parka"


def _read_projection(
    server: PolkuServer, values: list[str], sent: list[dict[str, Any]]
) -> tuple[dict[str, str], list[Any]]:
    """Identifier owners, and each sent message's log row with the profile it was given.

    Read straight from the server's SQLite files (identity_identifiers and
    identity_event_profiles, joined to the log file that Polku's engine attaches), which is
    what any profile API would answer from.
    """
    engine = make_engine(Settings.build(data_dir=server.data_dir))
    try:
        with engine.connect() as conn:
            owners = {
                str(value): str(profile)
                for value, profile in conn.execute(
                    select(identifiers.c.value, identifiers.c.profile_id).where(
                        identifiers.c.value.in_(values)
                    )
                )
            }
            rows = conn.execute(
                select(
                    log_events.c.message_id,
                    log_events.c.type,
                    log_events.c.payload,
                    event_profiles.c.profile_id,
                )
                .join(event_profiles, event_profiles.c.offset == log_events.c.offset)
                .where(log_events.c.message_id.in_([m["messageId"] for m in sent]))
            ).all()
    finally:
        engine.dispose()
    return owners, list(rows)
