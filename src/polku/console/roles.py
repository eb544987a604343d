"""Roles and what each may use: the one place the console's permissions are decided.

Every page and every action asks `allows(role, area)` on the server; a link hidden from the
home page is only a convenience. Store staff are bound to stores, and see only the queues of
those stores (`signal_queues`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["AREAS", "ROLES", "allows", "may_see_queue", "signal_queues"]

ROLES: Final = ("admin", "marketer", "agent", "store_staff")

AREAS: Final[dict[str, frozenset[str]]] = {
    # The buying-signal queues: who works customers.
    "signals": frozenset({"admin", "agent", "store_staff"}),
    # A customer's 360° view and the search: everyone who serves or markets to customers.
    "customers": frozenset({"admin", "marketer", "agent", "store_staff"}),
    # Splitting a wrongly merged profile back apart: the people who answer for profiles.
    "customers.unmerge": frozenset({"admin", "agent"}),
    # Stock across stores, reservations, returns and refunds.
    "commerce": frozenset({"admin", "agent", "store_staff"}),
    # Preparing and handing over reservations, inspecting returns, refunding: the stores.
    "commerce.store": frozenset({"admin", "store_staff"}),
    # Journeys: marketers build them, agents and stores do not.
    "journeys": frozenset({"admin", "marketer"}),
    "journeys.edit": frozenset({"admin", "marketer"}),
    # The data pages: the event debugger, write keys and sources, channels, users.
    "data": frozenset({"admin", "marketer"}),
    "data.admin": frozenset({"admin"}),
}
"""Area of the console → the roles that may use it."""

STORE_PREFIX: Final = "store:"


def allows(role: str, area: str) -> bool:
    """Whether `role` may use `area` (an unknown area allows nobody)."""
    return role in AREAS.get(area, frozenset())


def signal_queues(role: str, stores: Iterable[str], every_store: Iterable[str]) -> list[str]:
    """The signal queues `role` may see: a store clerk their stores' queues, an agent the
    `agents` queue, an admin every queue (`every_store` lists the workspace's locations)."""
    if role == "store_staff":
        return [STORE_PREFIX + store for store in sorted(set(stores))]
    if role == "agent":
        return ["agents"]
    if role == "admin":
        return ["agents", "automation", *(STORE_PREFIX + s for s in sorted(set(every_store)))]
    return []


def may_see_queue(role: str, stores: Iterable[str], queue: str) -> bool:
    """Whether `role` (working for `stores`) may see and work the signal queue `queue`."""
    if role == "admin":
        return True
    if role == "agent":
        return queue == "agents"
    if role == "store_staff":
        return queue.startswith(STORE_PREFIX) and queue[len(STORE_PREFIX) :] in set(stores)
    return False
