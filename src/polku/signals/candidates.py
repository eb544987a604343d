"""What scoring hands to routing: a candidate buying signal, with its reasons in words.

Scoring (the model and the rules, in `polku.signals.consumer`) produces `Candidate`s while
the pipeline applies a batch; routing (`polku.signals.routing.route`) turns those that pass
de-duplication into signals on queues, inside the same transaction, so a signal exists
exactly once per `dedupe_key` whatever the redelivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["MODEL_KIND", "UCI_COLUMNS", "Candidate", "Reason"]

MODEL_KIND: Final = "purchase_intent"
"""The kind of the signals the trained model raises; rule signals carry their rule's name."""

UCI_COLUMNS: Final = (
    "Administrative",
    "Administrative_Duration",
    "Informational",
    "Informational_Duration",
    "ProductRelated",
    "ProductRelated_Duration",
    "BounceRates",
    "ExitRates",
    "PageValues",
    "SpecialDay",
    "Month",
    "OperatingSystems",
    "Browser",
    "Region",
    "TrafficType",
    "VisitorType",
    "Weekend",
)
"""The feature columns of the UCI Online Shoppers data set, in its order. A live session's
feature row (`polku.signals.features`) has exactly these keys, with the data set's raw value
shapes: counts and seconds as numbers, rates in 0..1, ``Month`` as "Feb".."Dec" (with "June"
spelt out as in the data), ``VisitorType`` one of "Returning_Visitor", "New_Visitor",
"Other", ``Weekend`` a bool, the four integer codes as ints."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason a salesperson can read, with its share in the score."""

    code: str  # stable, machine-readable: "repeat_product_views", "high_page_value", ...
    en: str  # "Viewed Trail jacket 3 times in 7 days"
    fi: str  # "Katsoi tuotetta Trail-takki 3 kertaa 7 päivässä"
    weight: float = 0.0  # contribution to the score (model: its SHAP share; rules: 1.0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A buying signal before routing: who, what, where, how strong, and why."""

    workspace_id: str
    profile_id: str  # identity's profile for the triggering event
    kind: str  # MODEL_KIND or a rule's name
    score: float  # 0..1; the model's calibrated probability, or the rule's score
    event_id: str  # messageId of the event that raised it
    offset: int  # that event's log offset
    at_ms: int  # that event's time (event time, not the wall clock)
    dedupe_key: str  # one signal per key: kind, profile, product and window
    products: tuple[str, ...] = ()  # product ids involved, most relevant first
    store_id: str | None = None  # the store involved (stock checked there, visited, ...)
    channel: str | None = None  # context.channel of the triggering event
    session_id: str | None = None
    reasons: tuple[Reason, ...] = ()  # the top reasons, strongest first
    details: dict[str, object] = field(default_factory=dict)  # features worth showing
