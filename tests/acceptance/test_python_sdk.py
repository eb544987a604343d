"""The official Segment Python SDK, unpatched, against a real `polku serve`.

Only the SDK's own settings change: `host`, `write_key`, `gzip=True`, and either
`sync_mode` (one request per call) or the background consumer with `flush()` (batches).
Then every call must be in the log once and on the one profile of the person who made it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from segment.analytics.client import Client
from server import PolkuServer
from sqlalchemy import create_engine, select

from polku.identity.tables import event_profiles, identifiers
from polku.log.tables import log_events

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


@pytest.mark.parametrize("sync_mode", [True, False], ids=["sync", "batched"])
def test_python_sdk_calls_land_on_the_right_profile(
    polku_server: Callable[..., PolkuServer], sync_mode: bool
) -> None:
    server = polku_server()
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
    user, anon = f"user-{uuid.uuid4().hex[:8]}", f"anon-{uuid.uuid4()}"
    other_user = f"user-{uuid.uuid4().hex[:8]}"
    try:
        sent = _journey(client, user, anon)
        # Someone else on the same server must stay a different person.
        _, other = client.track(
            user_id=other_user, event="Store Visited", properties={"store_id": "HEL-01"}
        )
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    _settle(server, len(sent) + 1)

    engine = create_engine(f"sqlite:///{server.sqlite_path}")
    try:
        with engine.connect() as conn:
            owners = dict(
                conn.execute(
                    select(identifiers.c.value, identifiers.c.profile_id).where(
                        identifiers.c.value.in_([user, anon, f"{user}@kauppa.fi", other_user])
                    )
                ).all()
            )
            ids = [m["messageId"] for m in [*sent, other]]
            rows = conn.execute(
                select(
                    log_events.c.message_id,
                    log_events.c.type,
                    log_events.c.payload,
                    event_profiles.c.profile_id,
                )
                .join(event_profiles, event_profiles.c.offset == log_events.c.offset)
                .where(log_events.c.message_id.in_(ids))
            ).all()
    finally:
        engine.dispose()

    # One profile holds the user id, the browser's anonymous id (joined by alias) and the email.
    profile = owners[user]
    assert owners[anon] == profile
    assert owners[f"{user}@kauppa.fi"] == profile
    assert owners[other_user] != profile

    by_id = {row.message_id: row for row in rows}
    assert sorted(by_id) == sorted(ids), "every SDK call is in the log and resolved, once"
    assert len(rows) == len(ids)
    for message in sent:
        row = by_id[message["messageId"]]
        assert row.type == message["type"]
        assert row.profile_id == profile, f"{message['type']} landed on {row.profile_id}"
    assert {by_id[m["messageId"]].type for m in sent} == {
        "page",
        "track",
        "identify",
        "alias",
        "group",
    }
    assert by_id[other["messageId"]].profile_id == owners[other_user]

    stored = orjson.loads(by_id[sent[0]["messageId"]].payload)
    assert stored["context"]["library"]["name"] == "analytics-python"
    assert stored["receivedAt"].endswith("Z")
    assert stored["properties"]["title"] == "Parka"
