"""The demo's journeys: every ready-made journey installed and enabled, and the segment the
win-back journey waits for, in the demo workspace (running it again changes nothing)."""

from __future__ import annotations

from sqlalchemy import Engine

from polku.journeys.actions import install, library
from polku.journeys.segments import save_segment
from polku.storage.engine import writing

__all__ = ["LAPSING", "enable_journeys"]

LAPSING = {
    "key": "lapsing",
    "name": "Lapsing customers",
    "where": [
        {"field": "profile.order_count", "op": "gte", "value": 1},
        {"field": "profile.days_since_last_order", "op": "gte", "value": 120},
    ],
}


def enable_journeys(engine: Engine, workspace_id: str) -> list[str]:
    """Install and enable the ready-made journeys; their keys."""
    with writing(engine) as conn:
        save_segment(conn, workspace_id, LAPSING)
        for key in library():
            install(conn, workspace_id, key, enabled=True)
    return sorted(library())
