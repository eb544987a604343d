"""What the channels' edge reads: who an event about a profile should name, whether a
workspace exists, and which profile holds a phone number."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, select

from polku.access.tables import workspaces
from polku.identity.identifiers import IdentityConfig
from polku.identity.queries import event_carrier as carrier_of
from polku.profiles.queries import find_by_identifier

__all__ = ["CARRIER_ANONYMOUS_ID", "event_carrier", "profile_with_phone", "workspace_exists"]

CARRIER_ANONYMOUS_ID: Final = "polku-channels"
"""The browser id of an event the channels record for a person known only by an identifier
`properties` or `context.traits` carry. Marked as coming from a shared device, so identity
resolution never makes it anyone's identifier."""


def event_carrier(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> dict[str, Any]:
    """The identity fields of an event the channels record for `profile_id`
    (`polku.identity.queries.event_carrier`, with the channels' shared-device id)."""
    return carrier_of(conn, workspace_id, profile_id, config, device=CARRIER_ANONYMOUS_ID)


def workspace_exists(conn: Connection, workspace_id: str) -> bool:
    row = conn.execute(
        select(workspaces.c.workspace_id).where(workspaces.c.workspace_id == workspace_id)
    ).first()
    return row is not None


def profile_with_phone(
    conn: Connection, workspace_id: str, phone: str, config: IdentityConfig
) -> str | None:
    """The profile holding `phone` (any format identity reads), or None."""
    found = find_by_identifier(conn, workspace_id, "phone", phone, config)
    return None if found is None else found[0]
