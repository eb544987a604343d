"""Stored journey versions, parsed once per process.

A stored version never changes (a new document is a new version), so the parsed cache can
never be stale.
"""

from __future__ import annotations

import functools

import orjson
from sqlalchemy import Connection, select

from polku.journeys.definition import Journey, parse_journey
from polku.journeys.tables import journey_versions

__all__ = ["parsed", "version_of"]


@functools.lru_cache(maxsize=1024)
def _parse(document: str) -> Journey:
    return parse_journey(orjson.loads(document))


def parsed(document: str) -> Journey:
    """A stored document as a `Journey` (it was checked when it was saved)."""
    return _parse(document)


def version_of(conn: Connection, workspace_id: str, key: str, version: int) -> Journey | None:
    v = journey_versions.c
    document = conn.execute(
        select(v.document).where(
            v.workspace_id == workspace_id, v.journey_key == key, v.version == version
        )
    ).scalar()
    return None if document is None else parsed(document)
