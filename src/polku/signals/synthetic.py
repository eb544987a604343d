"""Training rows Polku may ship: the demo shop's simulated shoppers, through the live features.

The default purchase-intent model must not be trained on the public data sets (their licences
do not all allow shipping, and Polku must run without them). Instead `synthetic_rows` runs the
deterministic `polku.demo.shoppers.ShopperSimulator` (seeded; no bad messages) through the
same feature code the pipeline runs (`polku.signals.features.Tracker`) and takes each web or
app session's UCI-shaped row after its last event before its first purchase (or before it
ended), labelled by whether it bought: one row per session, as in the UCI data set, whose
``Revenue`` is the same label. (Rows after a random earlier event were tried: the simulated
shoppers never bounce, so that model scored a one-page visit as a likely buyer.) One seed
always gives the same rows, so `polku signals train --synthetic` always gives the same model.

The simulated journeys are scripted, so the label is nearly a function of the features
(cross-validated ROC-AUC near 1): the model learns the demo shop's world, and is a working
default that gives sensible reasons, not a measure of quality. Train on your own sessions
(`polku signals train --data`) for real scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from polku.demo.shoppers import ShopperSimulator
from polku.signals.datasets import LabelledRows
from polku.signals.features import Tracker

__all__ = ["DEFAULT_SHOPPERS", "SYNTHETIC_GRID", "SYNTHETIC_SEED", "synthetic_rows"]

SYNTHETIC_SEED: Final = 2026
DEFAULT_SHOPPERS: Final = 4000
SYNTHETIC_GRID: Final[tuple[dict[str, Any], ...]] = (
    {"num_leaves": 7, "min_child_samples": 20, "feature_fraction": 1.0, "learning_rate": 0.1},
    {"num_leaves": 7, "min_child_samples": 50, "feature_fraction": 0.7, "learning_rate": 0.1},
)
"""Two sets of small trees at a higher learning rate: the simulated label is easy, and small
trees keep the SHAP reasons cheap (a single-row `IntentModel.score` under 200 µs)."""
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
    sessions: dict[str, dict[str, object]] = {}  # the latest row of each session
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
            order.append(session)
        sessions[session] = snapshot.uci_row()
        if progress is not None and index % 1000 == 0:
            progress(index, shoppers)
    rows = [sessions[session] for session in order]
    labels = [session in bought for session in order]
    return LabelledRows(rows, labels, f"ShopperSimulator(seed={seed}), {shoppers} shoppers")
