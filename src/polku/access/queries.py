"""Look up who is calling: the source behind a write key, the workspace behind a token."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, select

from polku.access.actions import hash_token
from polku.access.tables import admin_tokens, write_keys
from polku.errors import Unavailable
from polku.storage.bulk import fetch_rows
from polku.storage.engine import translate_errors

__all__ = ["KeyCache", "Source", "admin_workspace", "list_admin_tokens", "list_write_keys"]


@dataclass(frozen=True, slots=True)
class Source:
    write_key: str
    workspace_id: str
    source_id: str
    source_name: str


class KeyCache:
    """Write-key lookups for the ingest path, cached for `ttl` seconds.

    The cache only saves reads: the database stays the truth, so a revoked key stops working
    everywhere within `ttl` seconds, in every process, while the database answers. While it
    does not, known keys keep working (see `source`).
    """

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Source | None]] = {}

    def source(self, write_key: str) -> Source | None:
        now = time.monotonic()
        hit = self._cache.get(write_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            with translate_errors("checking the write key"), self._engine.connect() as conn:
                row = conn.execute(
                    select(write_keys).where(
                        write_keys.c.write_key == write_key, write_keys.c.revoked.is_(False)
                    )
                ).first()
        except Unavailable:
            # The database is down. A key seen before goes on working (its events go to the
            # log, which may be up: the production mode's NATS), so a database outage does
            # not stop collection; a key revoked meanwhile works until the database is back.
            if hit is not None and hit[1] is not None:
                return hit[1]
            raise
        found = (
            Source(row.write_key, row.workspace_id, row.source_id, row.source_name)
            if row is not None
            else None
        )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[write_key] = (now + self._ttl, found)
        return found


# Plain SQL (`polku.storage.bulk`): every admin API request asks, and compiling the Core
# statement was ~0.2 ms of it.
_ADMIN_WORKSPACE: Final = (
    f"SELECT workspace_id FROM {admin_tokens.name} WHERE token_hash = ? AND revoked = ?"
)


def admin_workspace(conn: Connection, token: str) -> str | None:
    """The workspace of the admin `token`, or None for an unknown or revoked one."""
    rows = fetch_rows(conn, _ADMIN_WORKSPACE, (hash_token(token), False))
    return str(rows[0][0]) if rows else None


def list_write_keys(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(select(write_keys).order_by(write_keys.c.created_at)).all()
    return [dict(r._mapping) for r in rows]


def list_admin_tokens(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        select(
            admin_tokens.c.token_prefix,
            admin_tokens.c.workspace_id,
            admin_tokens.c.name,
            admin_tokens.c.created_at,
            admin_tokens.c.revoked,
        ).order_by(admin_tokens.c.created_at)
    ).all()
    return [dict(r._mapping) for r in rows]
