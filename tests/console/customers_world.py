"""What the customer-page tests share besides console_world: a buying signal for a given
person, routed as the signals consumer routes it in the pipeline's transaction."""

from __future__ import annotations

import itertools
import uuid

from console_world import MONDAY_NOON, WS, ms

from conftest import Polku
from polku.signals.candidates import MODEL_KIND, Candidate, Reason
from polku.signals.routing import route
from polku.storage.engine import writing

_offsets = itertools.count(5_000)


def signal_for(polku: Polku, profile_id: str, store_id: str) -> int:
    """A new signal about `profile_id` at `store_id`, routed now; its id."""
    c = Candidate(
        workspace_id=WS,
        profile_id=profile_id,
        kind=MODEL_KIND,
        score=0.9,
        event_id=f"m-{uuid.uuid4().hex}",
        offset=next(_offsets),
        at_ms=ms(MONDAY_NOON),
        dedupe_key=f"k-{uuid.uuid4().hex}",
        products=("takki-1",),
        channel="store",
        store_id=store_id,
        reasons=(
            Reason(
                "repeat_product_views",
                "Viewed Talvitakki 3 times in 7 days",
                "Katsoi tuotetta Talvitakki 3 kertaa 7 päivässä",
                0.6,
            ),
        ),
    )
    with writing(polku.runtime.engine) as conn:
        route(conn, [c])
    found = polku.client.get("/v1/signals", params={"limit": 1000}, headers=polku.admin)
    [signal] = [s for s in found.json()["signals"] if s["dedupe_key"] == c.dedupe_key]
    signal_id: int = signal["id"]
    return signal_id
