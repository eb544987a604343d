"""The locations and their opening status, as availability needs them, cached for seconds.

A product page asks for availability on every view, and every answer needs all the stores
and whether each is open: reference data that changes a few times a year, and opening
statuses that change on the minute. Reading them for every request would cost more than the
stock itself, so they are kept here for `TTL` seconds per database and workspace, and the
statuses per minute. The cache only saves reads (the tables stay the truth): a location
changed in any process shows within `TTL` seconds everywhere.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from polku.commerce.locations.hours import OpeningStatus, opening_statuses
from polku.commerce.locations.queries import Location, list_locations

__all__ = ["TTL", "Reference", "reference"]

TTL = 5.0


@dataclass
class Reference:
    """A workspace's active locations and their opening statuses (by minute, as asked)."""

    locations: list[Location]
    expires: float
    statuses: dict[int, dict[str, OpeningStatus]] = field(default_factory=dict)

    def by_id(self) -> dict[str, Location]:
        return {loc.location_id: loc for loc in self.locations}


_lock = threading.Lock()
_cache: dict[tuple[str, str], Reference] = {}


def reference(
    conn: Connection, workspace_id: str, at: datetime
) -> tuple[Reference, dict[str, OpeningStatus]]:
    """The workspace's locations and every store's opening status at `at` (to the minute)."""
    key = (conn.engine.url.render_as_string(hide_password=True), workspace_id)
    now = time.monotonic()
    with _lock:
        found = _cache.get(key)
    if found is None or found.expires <= now:
        found = Reference(
            [loc for loc in list_locations(conn, workspace_id) if loc.active], now + TTL
        )
        with _lock:
            if len(_cache) > 1000:
                _cache.clear()
            _cache[key] = found
    minute = int(at.timestamp() // 60)
    statuses = found.statuses.get(minute)
    if statuses is None:
        stores = [loc.location_id for loc in found.locations if loc.kind == "store"]
        statuses = opening_statuses(conn, workspace_id, stores, at)
        found.statuses = {minute: statuses}  # only the current minute is worth keeping
    return found, statuses
