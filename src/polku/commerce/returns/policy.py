"""A workspace's return policy: how long each category may be returned, the reason codes,
the outlet discount, and the bonus on a refund taken as a gift card.

The window of a product is that of the most specific category on its path that has one
(``Naiset > Takit`` covers ``Naiset > Takit > Talvitakit``), else the default; it runs from
the moment the order was placed. Without a policy of its own a workspace has the defaults
below (30 days, the EU's common promise beyond the 14-day legal minimum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import Connection, select

from polku.commerce.catalog.queries import category_key
from polku.commerce.returns.tables import policies, windows

__all__ = ["DAY_MS", "REASONS", "Policy", "get_policy"]

DAY_MS: Final = 86_400_000

REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "wrong_size": "Too small or too large.",
        "wrong_item": "Not the item ordered (another product, colour or size was sent).",
        "damaged": "Damaged in delivery.",
        "defective": "Faulty: flawed, broken, or stopped working.",
        "not_as_described": "Not as described or pictured (colour, material, fit).",
        "late": "Arrived too late to be of use.",
        "changed_mind": "No longer wanted.",
        "other": "Another reason: say which in the line's note.",
    }
)
"""The reason codes a returned line may give, with what each means."""


@dataclass(frozen=True, slots=True)
class Policy:
    default_window_days: int = 30
    outlet_discount_percent: int = 30
    gift_card_bonus_percent: int = 0
    gift_card_validity_days: int = 730
    windows: Mapping[str, int] = field(default_factory=dict)  # category path -> days
    updated_at: int | None = None

    def window_for(self, category: Sequence[str]) -> tuple[int, str | None]:
        """Days a product on `category` may be returned, and the category that says so
        (None: the default)."""
        for depth in range(len(category), 0, -1):
            key = category_key(category[:depth])
            if key in self.windows:
                return self.windows[key], key
        return self.default_window_days, None

    def as_dict(self) -> dict[str, Any]:
        return {
            "default_window_days": self.default_window_days,
            "category_windows": [
                {"category": key, "days": days} for key, days in sorted(self.windows.items())
            ],
            "outlet_discount_percent": self.outlet_discount_percent,
            "gift_card_bonus_percent": self.gift_card_bonus_percent,
            "gift_card_validity_days": self.gift_card_validity_days,
            "reasons": [{"code": code, "meaning": text} for code, text in REASONS.items()],
        }


def get_policy(conn: Connection, workspace_id: str) -> Policy:
    """The workspace's policy (the defaults where it has set none)."""
    row = conn.execute(select(policies).where(policies.c.workspace_id == workspace_id)).first()
    found = {
        category: int(days)
        for category, days in conn.execute(
            select(windows.c.category, windows.c.days).where(windows.c.workspace_id == workspace_id)
        )
    }
    if row is None:
        return Policy(windows=found)
    return Policy(
        default_window_days=int(row.default_window_days),
        outlet_discount_percent=int(row.outlet_discount_percent),
        gift_card_bonus_percent=int(row.gift_card_bonus_percent),
        gift_card_validity_days=int(row.gift_card_validity_days),
        windows=found,
        updated_at=int(row.updated_at),
    )
