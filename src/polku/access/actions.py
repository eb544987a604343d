"""Every write to workspaces, write keys and admin tokens goes through these functions."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from polku.access.tables import admin_tokens, workspaces, write_keys
from polku.errors import NotFound

__all__ = [
    "NewAdminToken",
    "create_admin_token",
    "create_workspace",
    "create_write_key",
    "ensure_default_workspace",
    "hash_token",
    "revoke_write_key",
]

DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True, slots=True)
class NewAdminToken:
    token: str  # shown once; only its hash is stored
    workspace_id: str
    name: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> int:
    return int(time.time() * 1000)


def create_workspace(conn: Connection, workspace_id: str, name: str | None = None) -> str:
    exists = conn.execute(
        select(workspaces.c.workspace_id).where(workspaces.c.workspace_id == workspace_id)
    ).first()
    if exists is None:
        conn.execute(
            insert(workspaces).values(
                workspace_id=workspace_id, name=name or workspace_id, created_at=_now()
            )
        )
    return workspace_id


def create_write_key(conn: Connection, workspace_id: str, source_name: str = "web") -> str:
    """A new write key for a source ("web", "app", "pos", ...) of the workspace."""
    create_workspace(conn, workspace_id)
    key = "wk_" + secrets.token_urlsafe(24)
    conn.execute(
        insert(write_keys).values(
            write_key=key,
            workspace_id=workspace_id,
            source_id="src_" + secrets.token_hex(6),
            source_name=source_name,
            created_at=_now(),
            revoked=False,
        )
    )
    return key


def revoke_write_key(conn: Connection, write_key: str) -> None:
    result = conn.execute(
        update(write_keys).where(write_keys.c.write_key == write_key).values(revoked=True)
    )
    if result.rowcount == 0:
        raise NotFound(f"No write key {write_key!r}.", field="write_key")


def create_admin_token(conn: Connection, workspace_id: str, name: str = "admin") -> NewAdminToken:
    create_workspace(conn, workspace_id)
    token = "pk_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(admin_tokens).values(
            token_hash=hash_token(token),
            token_prefix=token[:10],
            workspace_id=workspace_id,
            name=name,
            created_at=_now(),
            revoked=False,
        )
    )
    return NewAdminToken(token=token, workspace_id=workspace_id, name=name)


def ensure_default_workspace(conn: Connection) -> tuple[str, NewAdminToken] | None:
    """On a fresh database, create the default workspace with a write key and an admin token.

    Returns them so `polku serve` can print them once; None when a workspace already exists.
    """
    if conn.execute(select(workspaces.c.workspace_id).limit(1)).first() is not None:
        return None
    create_workspace(conn, DEFAULT_WORKSPACE, "Default workspace")
    key = create_write_key(conn, DEFAULT_WORKSPACE, "web")
    token = create_admin_token(conn, DEFAULT_WORKSPACE, "first admin")
    return key, token
