"""Whose cart is this: owners, their cart ids and locks, and finding a shopper's cart.

A cart belongs to a profile. A device that identity does not know yet (a brand-new
anonymousId: its first events are still on their way through the pipeline) gets its cart
at once all the same, owned by the device's identifier (``anonymous_id:<value>``,
``user_id:<value>``) until the consumer moves each of its changes to the profile identity
gives them to. Until then, and for a profile that identity merged into another one before
the carts consumer folded their carts, a person's cart is spread over several owners:
`find_holder` names them all, and the cart is their sum (the same-SKU rule of a merge).

Locks: a decision or the consumer locks the owner rows it will change (`lock_owners`,
PostgreSQL ``FOR UPDATE`` in owner order; SQLite has one writer), then looks again, since
identity may have moved an identifier meanwhile, until no new owner turns up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, exists, select

from polku.commerce.carts.tables import carts, lines
from polku.errors import InvalidField, NotFound
from polku.identity.identifiers import IdentityConfig, extract, junk_reason
from polku.identity.projection import profile_id_for
from polku.identity.queries import resolve_profile
from polku.identity.tables import identifiers, merges
from polku.storage.bulk import insert_rows

__all__ = [
    "CART_IDENTIFIERS",
    "Holder",
    "Shopper",
    "cart_id_for",
    "device_owner",
    "ensure_owners",
    "event_device_owner",
    "find_holder",
    "lock_owners",
    "parse_device_owner",
]

CART_IDENTIFIERS = ("user_id", "anonymous_id")
"""The identifier types a cart request (and a cart event) names its shopper by."""

_IN_CHUNK = 400
_FIELDS = {"user_id": "userId", "anonymous_id": "anonymousId"}


@dataclass(frozen=True, slots=True)
class Shopper:
    """Who a cart request is for: their userId and/or anonymousId, or a profile id."""

    user_id: str | None = None
    anonymous_id: str | None = None
    profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class Holder:
    """Where a shopper's cart is now.

    `owner` is the cart's home: the person's profile, or the device's identifier while
    identity does not know it. `owners` lists every owner whose lines are the person's,
    `owner` first (a device cart not moved yet, a merged profile's cart not folded yet).
    `user_id`/`anonymous_id` are the identifiers the cart's events carry.
    """

    owner: str
    profile_id: str | None
    owners: tuple[str, ...]
    user_id: str | None
    anonymous_id: str | None
    cart_id: str | None  # None: a device without a cart yet


def cart_id_for(owner: str) -> str:
    """The public id of a profile's cart (derived, so a replay gives the same ids)."""
    return "cart_" + hashlib.blake2b(owner.encode(), digest_size=12).hexdigest()


def _new_cart_id(ws: str, owner: str, first_message_id: str | None) -> str:
    """The id of a new cart of `owner`. A device's cart, made by its first event, takes the
    id of the cart of the profile identity will make from that event, so the cart keeps its
    id when it moves there (unless identity had other events of the device to see first)."""
    if parse_device_owner(owner) is None or first_message_id is None:
        return cart_id_for(owner)
    return cart_id_for(profile_id_for(ws, first_message_id))


def device_owner(id_type: str, value: str) -> str:
    return f"{id_type}:{value}"


def parse_device_owner(owner: str) -> tuple[str, str] | None:
    """(identifier type, value) of a device owner; None for a profile."""
    kind, sep, value = owner.partition(":")
    if not sep or kind not in CART_IDENTIFIERS:
        return None
    return kind, value


def event_device_owner(message: dict[str, object], config: IdentityConfig) -> str | None:
    """The device owner of an event identity gave to no profile: its userId, else its
    anonymousId (None when it has neither, or only a shared device's)."""
    for ident in extract(message, config):
        if ident.type in CART_IDENTIFIERS and not ident.shared:
            return device_owner(ident.type, ident.value)
    return None


# -- owner rows and their locks --------------------------------------------------------------


def ensure_owners(
    conn: Connection,
    ws: str,
    owners: Iterable[str],
    at: int,
    *,
    first_message_id: str | None = None,
) -> None:
    """Create the rows of `owners` that do not exist yet (in owner order); `first_message_id`
    names the event that makes a new cart, if any (see `_new_cart_id`)."""
    rows = []
    for owner in sorted(set(owners)):
        device = parse_device_owner(owner)
        rows.append(
            (
                ws,
                owner,
                _new_cart_id(ws, owner, first_message_id),
                device[0] if device else None,
                device[1] if device else None,
                at,
                at,
            )
        )
    insert_rows(
        conn,
        carts,
        ("workspace_id", "owner", "cart_id", "id_type", "id_value", "created_at", "updated_at"),
        rows,
        ignore_conflicts_on=("workspace_id", "owner"),
    )


def lock_owners(
    conn: Connection,
    ws: str,
    owners: Iterable[str],
    at: int,
    *,
    first_message_id: str | None = None,
) -> None:
    """Create and lock the rows of `owners` until the transaction ends: PostgreSQL
    ``FOR UPDATE`` in owner order, so two transactions on overlapping owners wait for each
    other instead of deadlocking. SQLite's write transaction already excludes other writers,
    so there only the rows are made."""
    wanted = sorted(set(owners))
    if not wanted:
        return
    ensure_owners(conn, ws, wanted, at, first_message_id=first_message_id)
    if conn.dialect.name != "postgresql":
        return
    for start in range(0, len(wanted), _IN_CHUNK):
        conn.execute(
            select(carts.c.owner)
            .where(carts.c.workspace_id == ws, carts.c.owner.in_(wanted[start : start + _IN_CHUNK]))
            .order_by(carts.c.owner)
            .with_for_update()
        ).all()


# -- finding a shopper's cart ----------------------------------------------------------------


def _identifiers(shopper: Shopper, config: IdentityConfig) -> list[tuple[str, str]]:
    """The shopper's (type, normalised value) pairs, userId first; InvalidField for junk."""
    given = {"user_id": shopper.user_id, "anonymous_id": shopper.anonymous_id}
    for id_type, raw in given.items():
        if raw is None:
            continue
        reason = junk_reason(id_type, raw, config)
        if reason is not None:
            field = _FIELDS[id_type]
            raise InvalidField(
                f"{field} {raw[:80]!r} is not usable as a customer's identifier: {reason}.",
                field=field,
                code="invalid_identifier",
                hint=f"Send the {field} the shop's tracking uses for this customer.",
            )
    message = {"userId": shopper.user_id, "anonymousId": shopper.anonymous_id}
    found = [
        (i.type, i.value)
        for i in extract(message, config)
        if i.type in CART_IDENTIFIERS and not i.shared
    ]
    if not found:
        raise InvalidField(
            "A cart belongs to a customer: send their userId or anonymousId (or a profile).",
            field="userId",
            code="missing_identity",
            hint="Send the userId of a signed-in customer, else the device's anonymousId.",
        )
    return found


def _owner_of(conn: Connection, ws: str, id_type: str, value: str) -> str | None:
    found = conn.execute(
        select(identifiers.c.profile_id).where(
            identifiers.c.workspace_id == ws,
            identifiers.c.id_type == id_type,
            identifiers.c.value == value,
        )
    ).scalar()
    return None if found is None else resolve_profile(conn, ws, found)


def _family(conn: Connection, ws: str, profile_id: str) -> set[str]:
    """`profile_id` and the profiles merged into it (directly or through others), whose
    carts the consumer may not have folded into its cart yet."""
    family = {profile_id}
    frontier = [profile_id]
    while frontier:
        rows = conn.execute(
            select(merges.c.loser_id).where(
                merges.c.workspace_id == ws,
                merges.c.winner_id.in_(frontier),
                merges.c.undone_at.is_(None),
            )
        )
        frontier = [loser for (loser,) in rows if loser not in family]
        family.update(frontier)
    return family


def _device_carts(conn: Connection, ws: str, profiles: Sequence[str]) -> set[str]:
    """Owners of device carts whose identifier identity now gives to one of `profiles`."""
    found: set[str] = set()
    for start in range(0, len(profiles), _IN_CHUNK):
        rows = conn.execute(
            select(carts.c.owner)
            .join(
                identifiers,
                and_(
                    identifiers.c.workspace_id == carts.c.workspace_id,
                    identifiers.c.id_type == carts.c.id_type,
                    identifiers.c.value == carts.c.id_value,
                ),
            )
            .where(
                carts.c.workspace_id == ws,
                identifiers.c.profile_id.in_(list(profiles[start : start + _IN_CHUNK])),
            )
        )
        found.update(owner for (owner,) in rows)
    return found


def _with_lines(conn: Connection, ws: str, owners: Iterable[str]) -> set[str]:
    wanted = sorted(set(owners))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        rows = conn.execute(
            select(carts.c.owner).where(
                carts.c.workspace_id == ws,
                carts.c.owner.in_(wanted[start : start + _IN_CHUNK]),
                exists().where(lines.c.workspace_id == ws, lines.c.owner == carts.c.owner),
            )
        )
        found.update(owner for (owner,) in rows)
    return found


def _event_identifiers(conn: Connection, ws: str, profile_id: str) -> tuple[str | None, str | None]:
    """The userId (else the first anonymousId) that events about `profile_id` carry."""
    rows = conn.execute(
        select(identifiers.c.id_type, identifiers.c.value)
        .where(
            identifiers.c.workspace_id == ws,
            identifiers.c.profile_id == profile_id,
            identifiers.c.id_type.in_(CART_IDENTIFIERS),
            identifiers.c.shared.is_(False),
        )
        .order_by(identifiers.c.first_seen, identifiers.c.added_offset, identifiers.c.value)
    ).all()
    user = next((value for kind, value in rows if kind == "user_id"), None)
    if user is not None:
        return user, None
    anonymous = next((value for kind, value in rows if kind == "anonymous_id"), None)
    return None, anonymous


def find_holder(conn: Connection, ws: str, shopper: Shopper, config: IdentityConfig) -> Holder:
    """Where `shopper`'s cart is now (see the module doc). Raises `InvalidField` for a
    request without a usable identifier, `NotFound` for an unknown profile."""
    if shopper.profile_id is not None:
        if shopper.user_id is not None or shopper.anonymous_id is not None:
            raise InvalidField(
                "Name the customer once: a profile, or their userId/anonymousId.",
                field="profile",
                code="ambiguous_identity",
                hint="Leave out profile, or leave out userId and anonymousId.",
            )
        profile = resolve_profile(conn, ws, shopper.profile_id)
        if profile is None:
            raise NotFound(
                f"There is no profile {shopper.profile_id[:80]!r} in this workspace.",
                field="profile",
                code="unknown_profile",
                hint="Find the id with GET /v1/profiles/lookup, or send the customer's userId.",
            )
        user_id, anonymous_id = _event_identifiers(conn, ws, profile)
        if user_id is None and anonymous_id is None:
            raise InvalidField(
                f"Profile {profile} has no userId or anonymousId, which cart events need.",
                field="profile",
                code="no_cart_identifier",
                hint="Send the customer's userId (or the device's anonymousId) instead.",
            )
        request: list[tuple[str, str]] = []
    else:
        request = _identifiers(shopper, config)
        user_id = next((v for kind, v in request if kind == "user_id"), None)
        anonymous_id = next((v for kind, v in request if kind == "anonymous_id"), None)
        profile = None
        for id_type, value in request:
            profile = _owner_of(conn, ws, id_type, value)
            if profile is not None:
                break
    devices = {device_owner(kind, value) for kind, value in request}
    cart_id: str | None
    if profile is None:
        home = device_owner(*request[0])
        others = devices
        cart_id = conn.execute(
            select(carts.c.cart_id).where(carts.c.workspace_id == ws, carts.c.owner == home)
        ).scalar()
    else:
        home = profile
        family = _family(conn, ws, profile)
        others = family | devices | _device_carts(conn, ws, sorted(family))
        cart_id = cart_id_for(profile)
    others = _with_lines(conn, ws, others - {home})
    return Holder(
        owner=home,
        profile_id=profile,
        owners=(home, *sorted(others)),
        user_id=user_id,
        anonymous_id=anonymous_id,
        cart_id=cart_id,
    )
