"""What the channels' edge reads: who an event about a profile should name, whether a
workspace exists, and which profile holds a phone number."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, select

from polku.access.tables import workspaces
from polku.errors import Conflict
from polku.identity.identifiers import IdentityConfig
from polku.identity.queries import profile_identifiers, resolve_profile, unknown_profile
from polku.profiles.queries import find_by_identifier

__all__ = ["CARRIER_ANONYMOUS_ID", "event_carrier", "profile_with_phone", "workspace_exists"]

CARRIER_ANONYMOUS_ID: Final = "polku-channels"
"""The browser id of an event the channels record for a person known only by an identifier
`properties` or `context.traits` carry. Marked as coming from a shared device, so identity
resolution never makes it anyone's identifier."""

# Identifier types an event can carry in `properties` (polku.identity.identifiers).
_PROPERTY_TYPES: Final = ("email", "phone", "loyalty_card", "pos_customer_id")


def event_carrier(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> dict[str, Any]:
    """The identity fields of an event that identity resolution gives to `profile_id`:
    its user id, else an anonymous id of it, else its strongest identifier that
    `properties` can carry. Only identifiers the profile holds, so the event adds none.

    The same rule as the events of `polku.profiles.actions.set_consent`. Raises `NotFound`
    for an unknown profile, `Conflict` when no event could name it.
    """
    holder = resolve_profile(conn, workspace_id, profile_id)
    if holder is None:
        raise unknown_profile(profile_id)
    held = profile_identifiers(conn, workspace_id, holder, config)
    usable = {kind: [i.value for i in found if not i.shared] for kind, found in held.items()}
    if usable.get("user_id"):
        return {"userId": usable["user_id"][0]}
    if usable.get("anonymous_id"):
        return {"anonymousId": usable["anonymous_id"][0]}
    for kind in held:  # strongest type first
        if kind in _PROPERTY_TYPES and usable.get(kind):
            return {
                "anonymousId": CARRIER_ANONYMOUS_ID,
                "context": {"device": {"shared": True}},
                "properties": {kind: usable[kind][0]},
            }
    raise Conflict(
        f"Profile {holder!r} has no identifier an event can carry (a user id, an anonymous "
        "id, an email, a phone or a loyalty card).",
        field="profile_id",
        hint="Nothing can be recorded for this profile until one of its events names it.",
    )


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
