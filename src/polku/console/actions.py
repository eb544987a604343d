"""Every write to console users and sessions: create a user, set a password, sign in and out.

Sign-in is limited per email: after `FAILURE_LIMIT` failed attempts within
`FAILURE_WINDOW_MS`, further attempts are refused (429 `too_many_sign_ins`) without checking
the password, until the oldest failure leaves the window or an admin sets a new password.
The limit is counted from rows, so it holds across processes and restarts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, delete, select, update

from polku.access.tables import workspaces
from polku.commerce.locations.queries import get_location
from polku.console import passwords
from polku.console.queries import (
    User,
    failures_since,
    get_user,
    normalise_email,
    password_hash_of,
    token_hash,
)
from polku.console.roles import ROLES
from polku.console.tables import (
    console_login_failures,
    console_sessions,
    console_user_stores,
    console_users,
)
from polku.errors import Conflict, InvalidField, NotFound, TooManyRequests, Unauthorized
from polku.storage.engine import translate_errors, writing

__all__ = [
    "FAILURE_LIMIT",
    "FAILURE_WINDOW_MS",
    "SESSION_MS",
    "NewSession",
    "TooManySignIns",
    "create_user",
    "set_locale",
    "set_password",
    "sign_in",
    "sign_out",
]

SESSION_MS: Final = 12 * 3_600_000  # a working day; then the browser signs in again
FAILURE_LIMIT: Final = 5
FAILURE_WINDOW_MS: Final = 15 * 60_000
_EMAIL_LIMIT: Final = 254
_LOCALES: Final = ("fi", "en")


class TooManySignIns(TooManyRequests):
    """429: sign-in for this email is paused after too many failures."""

    code = "too_many_sign_ins"


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: `token` goes into the cookie and is stored only hashed."""

    token: str
    csrf_token: str
    expires_at: int
    user: User


def _now() -> int:
    return int(time.time() * 1000)


def _email(email: str) -> str:
    normal = normalise_email(email)
    local, at, domain = normal.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(normal) > _EMAIL_LIMIT
        or any(c.isspace() for c in normal)
    ):
        raise InvalidField(
            f"{email[:80]!r} is not an email address.",
            field="email",
            code="invalid_email",
            hint="Give the person's work email, e.g. aino@store.example.",
        )
    return normal


def _role(role: str) -> str:
    if role not in ROLES:
        raise InvalidField(
            f"Unknown role {role[:40]!r}.",
            field="role",
            code="invalid_role",
            hint="Use one of: " + ", ".join(ROLES) + ".",
        )
    return role


def _stores(conn: Connection, workspace_id: str, role: str, stores: Iterable[str]) -> list[str]:
    wanted = sorted(set(stores))
    if role == "store_staff" and not wanted:
        raise InvalidField(
            "A store_staff user needs at least one store.",
            field="stores",
            code="store_required",
            hint="Name the store's location id, e.g. --store hki-kamppi (GET /v1/locations).",
        )
    if role != "store_staff" and wanted:
        raise InvalidField(
            f"Only store_staff users work for stores; a {role} sees what the role allows.",
            field="stores",
            code="stores_not_allowed",
            hint="Leave the stores out, or use --role store_staff.",
        )
    for location_id in wanted:
        if get_location(conn, workspace_id, location_id) is None:
            raise NotFound(
                f"Workspace {workspace_id!r} has no location {location_id[:100]!r}.",
                field="stores",
                code="unknown_location",
                hint="Create the store first (POST /v1/locations or `polku import`), or "
                "check the id with GET /v1/locations.",
            )
    return wanted


def _locale(locale: str | None) -> str | None:
    if locale is not None and locale not in _LOCALES:
        raise InvalidField(
            f"Unknown language {locale[:20]!r}.",
            field="locale",
            code="invalid_locale",
            hint="Use fi or en, or leave it out to follow the browser.",
            params={"locale": locale[:20]},
        )
    return locale


def create_user(
    engine: Engine,
    workspace_id: str,
    email: str,
    role: str,
    password: str,
    stores: Iterable[str] = (),
    locale: str | None = None,
) -> User:
    """A new console user of `workspace_id`; 409 `user_exists` if the email has one."""
    normal, checked_role = _email(email), _role(role)
    passwords.check_password(password)
    checked_locale = _locale(locale)
    hashed = passwords.hash_password(password)  # before the transaction: it takes a while
    now = _now()
    with translate_errors("creating the console user"), writing(engine) as conn:
        if (
            conn.execute(
                select(workspaces.c.workspace_id).where(workspaces.c.workspace_id == workspace_id)
            ).first()
            is None
        ):
            raise NotFound(
                f"There is no workspace {workspace_id[:64]!r}.",
                field="workspace",
                code="unknown_workspace",
                hint="Use the default workspace, or create one with "
                "`polku keys create --workspace NAME`.",
            )
        wanted = _stores(conn, workspace_id, checked_role, stores)
        if get_user(conn, normal) is not None:
            raise Conflict(
                f"There is already a console user {normal!r}.",
                field="email",
                code="user_exists",
                hint="Set a new password with `polku users set-password EMAIL` instead.",
            )
        user_id = "u_" + secrets.token_hex(8)
        conn.execute(
            console_users.insert().values(
                user_id=user_id,
                workspace_id=workspace_id,
                email=normal,
                role=checked_role,
                password_hash=hashed,
                locale=checked_locale,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        for location_id in wanted:
            conn.execute(
                console_user_stores.insert().values(user_id=user_id, location_id=location_id)
            )
        created = get_user(conn, normal)
    assert created is not None
    return created


def _unknown_user(email: str) -> NotFound:
    return NotFound(
        f"There is no console user {email[:100]!r}.",
        field="email",
        code="unknown_user",
        hint="List the users with `polku users list`, or create one with `polku users create`.",
    )


def set_password(engine: Engine, email: str, password: str) -> User:
    """A new password for `email`. Every session of the user ends (a password is changed
    when one may be known to someone else), and the sign-in pause is lifted."""
    normal = normalise_email(email)
    passwords.check_password(password)
    hashed = passwords.hash_password(password)
    now = _now()
    with translate_errors("setting the password"), writing(engine) as conn:
        user = get_user(conn, normal)
        if user is None:
            raise _unknown_user(normal)
        conn.execute(
            update(console_users)
            .where(console_users.c.user_id == user.user_id)
            .values(password_hash=hashed, updated_at=now)
        )
        _end_sessions(conn, user.user_id, now)
        conn.execute(delete(console_login_failures).where(console_login_failures.c.email == normal))
    return user


def set_active(engine: Engine, email: str, active: bool) -> User:
    """Let `email` sign in again (`active`), or stop them: a deactivated user's sessions
    end at once and their password no longer opens one; the user and what they did stay."""
    normal = normalise_email(email)
    now = _now()
    with translate_errors("changing the user"), writing(engine) as conn:
        user = get_user(conn, normal)
        if user is None:
            raise _unknown_user(normal)
        conn.execute(
            update(console_users)
            .where(console_users.c.user_id == user.user_id)
            .values(active=active, updated_at=now)
        )
        if not active:
            _end_sessions(conn, user.user_id, now)
    return user


def _end_sessions(conn: Connection, user_id: str, now: int) -> None:
    s = console_sessions.c
    conn.execute(
        update(console_sessions)
        .where(s.user_id == user_id, s.ended_at.is_(None))
        .values(ended_at=now)
    )


def _paused(email: str) -> TooManySignIns:
    minutes = FAILURE_WINDOW_MS // 60_000
    return TooManySignIns(
        f"Sign-in for {email[:100]!r} is paused: {FAILURE_LIMIT} wrong passwords within "
        f"{minutes} minutes.",
        field="email",
        hint=f"Wait {minutes} minutes, or ask an admin to set a new password "
        "(`polku users set-password EMAIL`).",
    )


def sign_in(engine: Engine, email: str, password: str) -> NewSession:
    """A new session for `email` if `password` is right: 401 `wrong_credentials` (the same
    for an unknown email), 429 `too_many_sign_ins` once the limit is reached."""
    normal = normalise_email(email)
    now = _now()
    since = now - FAILURE_WINDOW_MS
    with translate_errors("signing in"), engine.connect() as conn:
        if failures_since(conn, normal, since) >= FAILURE_LIMIT:
            raise _paused(normal)
        stored = password_hash_of(conn, normal)
    # The hash is checked outside any write transaction: it takes tens of milliseconds.
    if not passwords.verify(stored, password):
        with translate_errors("signing in"), writing(engine) as conn:
            conn.execute(
                console_login_failures.insert().values(email=normal[:_EMAIL_LIMIT], at=now)
            )
        raise Unauthorized(
            "Wrong email or password.",
            field="password",
            code="wrong_credentials",
            hint=f"Check both and try again; after {FAILURE_LIMIT} failures in "
            f"{FAILURE_WINDOW_MS // 60_000} minutes sign-in pauses for that email.",
        )
    assert stored is not None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with translate_errors("signing in"), writing(engine) as conn:
        # Re-counted under the write lock: failures that raced this attempt still count.
        if failures_since(conn, normal, since) >= FAILURE_LIMIT:
            raise _paused(normal)
        user = get_user(conn, normal)
        if user is None or not user.active:  # removed meanwhile
            raise Unauthorized(
                "Wrong email or password.", field="password", code="wrong_credentials"
            )
        f, s = console_login_failures.c, console_sessions.c
        conn.execute(delete(console_login_failures).where(f.email == normal))
        conn.execute(
            delete(console_sessions).where(s.user_id == user.user_id, s.expires_at < since)
        )
        if passwords.needs_rehash(stored):
            conn.execute(
                update(console_users)
                .where(console_users.c.user_id == user.user_id)
                .values(password_hash=passwords.hash_password(password))
            )
        conn.execute(
            console_sessions.insert().values(
                token_hash=token_hash(token),
                user_id=user.user_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + SESSION_MS,
                ended_at=None,
            )
        )
    return NewSession(token, csrf, now + SESSION_MS, user)


def sign_out(engine: Engine, token: str) -> None:
    """End the session `token` now; its cookie no longer signs anyone in."""
    s = console_sessions.c
    with translate_errors("signing out"), writing(engine) as conn:
        conn.execute(
            update(console_sessions)
            .where(s.token_hash == token_hash(token), s.ended_at.is_(None))
            .values(ended_at=_now())
        )


def set_locale(engine: Engine, user_id: str, locale: str | None) -> None:
    """The user's console language (`fi`, `en`, or None to follow the browser)."""
    checked = _locale(locale)
    with translate_errors("saving the language"), writing(engine) as conn:
        conn.execute(
            update(console_users)
            .where(console_users.c.user_id == user_id)
            .values(locale=checked, updated_at=_now())
        )
