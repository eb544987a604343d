"""The demo's console users: one per role, with a shared demo password, so a newcomer can
sign in to the console as an admin, a marketer, an agent and a store clerk (Kamppi) and see
what each may do (running it again changes nothing)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Engine

from polku.console.actions import create_user
from polku.console.queries import get_user

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "ensure_demo_users"]

DEMO_PASSWORD: Final = "pohjoisretki-demo"
"""Shown by `polku demo` itself: these accounts exist only in the demo workspace."""

DEMO_USERS: Final = (
    ("admin", "admin@demo.pohjoisretki.fi", ()),
    ("marketer", "marketer@demo.pohjoisretki.fi", ()),
    ("agent", "agent@demo.pohjoisretki.fi", ()),
    ("store_staff", "kamppi@demo.pohjoisretki.fi", ("store-hki-kamppi",)),
)


def ensure_demo_users(engine: Engine, workspace_id: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Create the demo users that are missing; (role, email, stores) of each."""
    for role, email, stores in DEMO_USERS:
        with engine.connect() as conn:
            exists = get_user(conn, email) is not None
        if not exists:
            create_user(engine, workspace_id, email, role, DEMO_PASSWORD, stores, locale="fi")
    return [(role, email, tuple(stores)) for role, email, stores in DEMO_USERS]
