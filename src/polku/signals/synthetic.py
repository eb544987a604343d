"""Training rows Polku may ship: the demo shop's simulated shoppers, through the live features.

The default purchase-intent model must not be trained on the public data sets (their licences
do not all allow shipping, and Polku must run without them). Instead `synthetic_rows` runs the
deterministic `polku.demo.shoppers.ShopperSimulator` (seeded; no bad messages) through the
same feature code the pipeline runs (`polku.signals.features.Tracker`) and takes each web or
app session's UCI-shaped row after every one of its events up to its first purchase,
labelled by whether the session went on to buy (the UCI data set's ``Revenue``). One seed
always gives the same rows, so `polku signals train --synthetic` always gives the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from polku.demo.shoppers import ShopperSimulator
from polku.signals.datasets import LabelledRows
from polku.signals.features import Tracker

__all__ = ["DEFAULT_SHOPPERS", "SYNTHETIC_SEED", "synthetic_rows"]

SYNTHETIC_SEED: Final = 2026
DEFAULT_SHOPPERS: Final = 3000
_ONLINE: Final = frozenset({"web", "app"})
_PURCHASES: Final = frozenset({"Order Completed", "POS Order Completed"})


def synthetic_rows(
    shoppers: int = DEFAULT_SHOPPERS,
    *,
    seed: int = SYNTHETIC_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> LabelledRows:
    """Labelled UCI-shaped rows of `shoppers` simulated shoppers (see the module doc)."""
    simulator = ShopperSimulator(seed=seed, bad_event_rate=0.0)
    tracker = Tracker()
    sessions: dict[str, list[dict[str, object]]] = {}
    bought: set[str] = set()
    order: list[str] = []
    for index, message in enumerate(simulator.stream(shoppers)):
        snapshot = tracker.observe(message)
        session = snapshot.session_id
        if snapshot.event in _PURCHASES or snapshot.session_purchases > 0:
            bought.add(session)
            continue
        if session in bought or snapshot.channel not in _ONLINE or snapshot.views == 0:
            continue  # after the purchase, in a store, or no page seen yet
        if session not in sessions:
            sessions[session] = []
            order.append(session)
        sessions[session].append(snapshot.uci_row())
        if progress is not None and index % 1000 == 0:
            progress(index, shoppers)
    rows: list[dict[str, object]] = []
    labels: list[bool] = []
    for session in order:
        for row in sessions[session]:
            rows.append(row)
            labels.append(session in bought)
    return LabelledRows(rows, labels, f"ShopperSimulator(seed={seed}), {shoppers} shoppers")
