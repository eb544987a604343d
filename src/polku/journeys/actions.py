"""Every write to journey definitions: save a version, enable, disable, install a ready-made
journey, change the workspace's journey settings.

A saved document is checked in full first (`parse_journey`, with the message templates
checked by `polku.journeys.content.Content.check`), so a journey that is stored can run.
Saving a document that differs from the live version makes a new version, which new
entrants start on; people already in the journey finish on the version they entered.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from polku.errors import Conflict, NotFound
from polku.journeys.config import JourneyConfig, save_config
from polku.journeys.content import Content
from polku.journeys.definition import Journey, parse_journey, parse_text
from polku.journeys.tables import journey_states, journey_versions

__all__ = [
    "check_document",
    "create_journey",
    "install",
    "library",
    "save_journey",
    "set_enabled",
    "update_settings",
]


@functools.cache
def _content() -> Content:
    return Content()


def _templates(template: str | Mapping[str, Any], channel: str) -> list[tuple[str, str]]:
    content = _content()
    if isinstance(template, str):
        if template not in content.names():
            return [
                (
                    "",
                    f"There is no shipped template {template!r}; "
                    f"use one of {', '.join(content.names())}.",
                )
            ]
        return []
    return content.check(template)


def check_document(raw: Any) -> Journey:
    """A document checked as a journey, templates included (raises `InvalidJourney`)."""
    return parse_journey(raw, templates=_templates)


@functools.cache
def library() -> dict[str, Mapping[str, Any]]:
    """The ready-made journeys shipped with Polku (journeys/library/*.yaml), by key."""
    found: dict[str, Mapping[str, Any]] = {}
    folder = resources.files("polku.journeys") / "library"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            document = parse_text(entry.read_text(encoding="utf-8"), source=entry.name)
            journey = check_document(document)
            found[journey.key] = document
    return found


def save_journey(
    conn: Connection,
    workspace_id: str,
    document: Any,
    *,
    by: str = "admin_api",
    enabled: bool | None = None,
) -> tuple[int, bool]:
    """Store `document` as the journey's newest version (unless it is the live one already);
    (the live version, whether a new one was made)."""
    journey = check_document(document)
    now = int(time.time() * 1000)
    v, s = journey_versions.c, journey_states.c
    state = conn.execute(
        select(s.version, s.enabled).where(
            s.workspace_id == workspace_id, s.journey_key == journey.key
        )
    ).first()
    if state is not None:
        live = conn.execute(
            select(v.checksum).where(
                v.workspace_id == workspace_id,
                v.journey_key == journey.key,
                v.version == state.version,
            )
        ).scalar()
        if live == journey.checksum:
            if enabled is not None and enabled != bool(state.enabled):
                set_enabled(conn, workspace_id, journey.key, enabled)
            return int(state.version), False
    latest = conn.execute(
        select(func.max(v.version)).where(
            v.workspace_id == workspace_id, v.journey_key == journey.key
        )
    ).scalar()
    version = int(latest or 0) + 1
    conn.execute(
        journey_versions.insert().values(
            workspace_id=workspace_id,
            journey_key=journey.key,
            version=version,
            document=orjson.dumps(journey.document, option=orjson.OPT_SORT_KEYS).decode(),
            checksum=journey.checksum,
            created_at=now,
            created_by=by[:100],
        )
    )
    if state is None:
        conn.execute(
            journey_states.insert().values(
                workspace_id=workspace_id,
                journey_key=journey.key,
                version=version,
                enabled=bool(enabled),
                updated_at=now,
            )
        )
    else:
        values: dict[str, Any] = {"version": version, "updated_at": now}
        if enabled is not None:
            values["enabled"] = enabled
        conn.execute(
            journey_states.update()
            .where(s.workspace_id == workspace_id, s.journey_key == journey.key)
            .values(**values)
        )
    return version, True


def create_journey(conn: Connection, workspace_id: str, document: Any, *, by: str) -> int:
    """Store `document` as version 1 of a new journey (disabled); Conflict when the
    workspace has a journey of that key already (saving would replace what someone else
    wrote)."""
    journey = check_document(document)
    s = journey_states.c
    exists = conn.execute(
        select(s.version).where(s.workspace_id == workspace_id, s.journey_key == journey.key)
    ).first()
    if exists is not None:
        raise Conflict(
            f"There is a journey {journey.key!r} already.",
            field="key",
            hint="Edit that journey instead, or give the new one another key.",
            message_id="journey_exists",
            params={"journey": journey.key},
        )
    version, _ = save_journey(conn, workspace_id, document, by=by, enabled=False)
    return version


def set_enabled(conn: Connection, workspace_id: str, key: str, enabled: bool) -> None:
    s = journey_states.c
    done = conn.execute(
        journey_states.update()
        .where(s.workspace_id == workspace_id, s.journey_key == key)
        .values(enabled=enabled, updated_at=int(time.time() * 1000))
    )
    if not done.rowcount:
        raise NotFound(
            f"No journey {key!r} in this workspace.",
            field="key",
            hint="Create it with PUT /v1/journeys/{key}, or install it from the library.",
            message_id="unknown_journey",
            params={"journey": key},
        )


def install(
    conn: Connection, workspace_id: str, key: str, *, enabled: bool = False
) -> tuple[int, bool]:
    """Copy the ready-made journey `key` into the workspace (a no-op when it is there)."""
    found = library().get(key)
    if found is None:
        raise NotFound(
            f"There is no ready-made journey {key!r}.",
            field="key",
            hint="GET /v1/journeys/library lists them: " + ", ".join(sorted(library())),
            message_id="unknown_library_journey",
            params={"journey": key},
        )
    return save_journey(conn, workspace_id, found, by="library", enabled=enabled)


def update_settings(conn: Connection, workspace_id: str, config: JourneyConfig) -> None:
    save_config(conn, workspace_id, config)
