"""Writes of the recommendations package: storing a trained bundle."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from polku.recommend.tables import models

__all__ = ["save_bundle"]


def save_bundle(
    conn: Connection, workspace_id: str, payload: bytes, summary: dict[str, Any]
) -> int:
    """Replace the workspace's bundle with `payload`; returns its new version (1, 2, ...)."""
    current = conn.execute(
        select(models.c.version).where(models.c.workspace_id == workspace_id)
    ).scalar()
    values = {
        "trained_at": int(time.time() * 1000),
        "payload": payload,
        "summary": orjson.dumps(summary).decode(),
    }
    if current is None:
        conn.execute(models.insert().values(workspace_id=workspace_id, version=1, **values))
        return 1
    version = int(current) + 1
    conn.execute(
        update(models)
        .where(models.c.workspace_id == workspace_id)
        .values(version=version, **values)
    )
    return version
