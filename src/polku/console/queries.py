"""Reading console users and sessions: who a cookie belongs to, the users of a workspace.

A session counts only while its row says so: not ended (signed out) and not expired.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, func, select

from polku.console.tables import (
    console_login_failures,
    console_sessions,
    console_user_stores,
    console_users,
)

__all__ = [
    "STAFF_ID_LIMIT",
    "User",
    "Viewer",
    "failures_since",
    "get_user",
    "list_users",
    "normalise_email",
    "password_hash_of",
    "session_viewer",
    "token_hash",
]

STAFF_ID_LIMIT: Final = 100  # what `signals.actions` accepts as a staff id


@dataclass(frozen=True, slots=True)
class User:
    """A console user; `stores` are the location ids a store clerk works for."""

    user_id: str
    workspace_id: str
    email: str
    role: str
    stores: tuple[str, ...]
    locale: str | None
    active: bool
    created_at: int

    @property
    def staff_id(self) -> str:
        """Who this user is on a signal's claim and outcome: the email (the user id when
        the email is longer than a staff id may be)."""
        return self.email if len(self.email) <= STAFF_ID_LIMIT else self.user_id


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in session: the user, the session's CSRF token and when it ends."""

    user: User
    csrf_token: str
    expires_at: int


def normalise_email(email: str) -> str:
    """Emails are matched case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def token_hash(token: str) -> str:
    """What the database keeps of a session token (the cookie's value)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _users(conn: Connection, rows: Sequence[Any]) -> list[User]:
    if not rows:
        return []
    stores: dict[str, list[str]] = defaultdict(list)
    for user_id, location_id in conn.execute(
        select(console_user_stores.c.user_id, console_user_stores.c.location_id)
        .where(console_user_stores.c.user_id.in_([row.user_id for row in rows]))
        .order_by(console_user_stores.c.user_id, console_user_stores.c.location_id)
    ):
        stores[user_id].append(location_id)
    return [
        User(
            user_id=row.user_id,
            workspace_id=row.workspace_id,
            email=row.email,
            role=row.role,
            stores=tuple(stores.get(row.user_id, ())),
            locale=row.locale,
            active=bool(row.active),
            created_at=int(row.created_at),
        )
        for row in rows
    ]


def get_user(conn: Connection, email: str) -> User | None:
    rows = conn.execute(
        select(console_users).where(console_users.c.email == normalise_email(email))
    ).all()
    found = _users(conn, rows)
    return found[0] if found else None


def password_hash_of(conn: Connection, email: str) -> str | None:
    """The stored hash of an active user's password; None for an unknown or inactive one."""
    row = conn.execute(
        select(console_users.c.password_hash, console_users.c.active).where(
            console_users.c.email == normalise_email(email)
        )
    ).first()
    return None if row is None or not row.active else str(row.password_hash)


def list_users(conn: Connection, workspace_id: str | None = None) -> list[User]:
    """Users by email, of one workspace or of all."""
    query = select(console_users)
    if workspace_id is not None:
        query = query.where(console_users.c.workspace_id == workspace_id)
    return _users(conn, conn.execute(query.order_by(console_users.c.email)).all())


def failures_since(conn: Connection, email: str, since: int) -> int:
    """Failed sign-ins for `email` at or after `since` (epoch ms)."""
    f = console_login_failures.c
    count = conn.execute(
        select(func.count())
        .select_from(console_login_failures)
        .where(f.email == normalise_email(email), f.at >= since)
    ).scalar_one()
    return int(count)


def session_viewer(conn: Connection, token: str, now: int) -> Viewer | None:
    """Who holds the session `token`, if it is neither signed out nor expired and its
    user is active."""
    s = console_sessions.c
    row = conn.execute(
        select(console_sessions).where(
            s.token_hash == token_hash(token), s.ended_at.is_(None), s.expires_at > now
        )
    ).first()
    if row is None:
        return None
    users = _users(
        conn,
        conn.execute(select(console_users).where(console_users.c.user_id == row.user_id)).all(),
    )
    if not users or not users[0].active:
        return None
    return Viewer(users[0], row.csrf_token, int(row.expires_at))
