"""A profile's state and how events change it; pure functions, no database.

Traits are last-write-wins per trait by event time (so late-arriving events from a till that
was offline cannot overwrite newer web data), consent is last-write-wins per purpose and
channel, counters add up, and two states merge the same way whichever order they come in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from polku.events import LoggedEvent

__all__ = [
    "ORDER_EVENTS",
    "ProfileState",
    "apply_event",
    "changes_traits",
    "consent_changes",
    "merge_states",
]

ORDER_EVENTS: Final = frozenset({"Order Completed", "POS Order Completed"})
_NAME_PARTS: Final = ("first_name", "firstName", "last_name", "lastName")


@dataclass(slots=True)
class ProfileState:
    profile_id: str
    workspace_id: str
    first_seen: int
    last_seen: int
    traits: dict[str, Any] = field(default_factory=dict)
    trait_times: dict[str, int] = field(default_factory=dict)
    consent: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    event_count: int = 0
    order_count: int = 0
    last_offset: int = 0
    merged_into: str | None = None

    @property
    def email(self) -> str | None:
        value = self.traits.get("email")
        return value.strip().lower()[:300] if isinstance(value, str) and value.strip() else None

    @property
    def phone(self) -> str | None:
        value = self.traits.get("phone")
        return (
            str(value).strip()[:40]
            if isinstance(value, (str, int)) and str(value).strip()
            else None
        )

    @property
    def name(self) -> str | None:
        value = self.traits.get("name")
        if isinstance(value, str) and value.strip():
            return value.strip()[:300]
        first = self.traits.get("first_name") or self.traits.get("firstName")
        last = self.traits.get("last_name") or self.traits.get("lastName")
        parts = [p.strip() for p in (first, last) if isinstance(p, str) and p.strip()]
        return " ".join(parts)[:300] or None


def _set_trait(
    state: ProfileState, key: str, value: Any, at: int, *, merging: bool = False
) -> None:
    """Last write wins by event time; between events of equal time the later one in the log.

    When two profiles merge, a tie cannot be broken by log order, so the larger value (by
    its JSON form) wins: the merged result is then the same whichever profile survives.
    """
    known = state.trait_times.get(key, -1)
    if at > known or (
        at == known
        and (
            not merging
            or orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
            > orjson.dumps(state.traits.get(key), option=orjson.OPT_SORT_KEYS)
        )
    ):
        state.traits[key] = value
        state.trait_times[key] = at


def _set_consent(
    state: ProfileState,
    purpose: str,
    channel: str,
    granted: bool,
    at: int,
    source: str,
    *,
    merging: bool = False,
) -> None:
    """Last write wins per purpose and channel, ties broken as in `_set_trait`."""
    by_channel = state.consent.setdefault(purpose, {})
    previous = by_channel.get(channel)
    entry = {"granted": granted, "at": at, "source": source}
    if previous is None:
        by_channel[channel] = entry
        return
    known = previous.get("at", -1)
    if at > known or (
        at == known
        and (not merging or (granted, source) > (previous["granted"], previous["source"]))
    ):
        by_channel[channel] = entry


def consent_changes(message: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(purpose, channel, granted) triples carried by a message.

    From identify traits ``consent: {"marketing": {"email": true, "sms": false}}`` (a bare
    boolean means every channel: ``"*"``), and from ``Consent Updated`` track events with
    ``properties: {purpose, channel, granted}``.
    """
    found: list[tuple[str, str, bool]] = []
    if message.get("type") == "track" and message.get("event") == "Consent Updated":
        props = message.get("properties") or {}
        purpose, granted = props.get("purpose"), props.get("granted")
        channel = props.get("channel") or "*"
        if isinstance(purpose, str) and isinstance(granted, bool) and isinstance(channel, str):
            found.append((purpose, channel, granted))
        return found
    traits = message.get("traits") if message.get("type") == "identify" else None
    if not isinstance(traits, dict):
        context = message.get("context")
        traits = context.get("traits") if isinstance(context, dict) else None
    consent = traits.get("consent") if isinstance(traits, dict) else None
    if isinstance(consent, dict):
        for purpose, value in consent.items():
            if isinstance(value, bool):
                found.append((str(purpose), "*", value))
            elif isinstance(value, dict):
                for channel, granted in value.items():
                    if isinstance(granted, bool):
                        found.append((str(purpose), str(channel), granted))
    return found


def _event_traits(event: LoggedEvent, message: dict[str, Any], context: Any) -> Any:
    """The traits object an event sets: an identify's own traits, else ``context.traits``."""
    if event.type == "identify":
        return message.get("traits")
    if isinstance(context, dict):
        return context.get("traits")
    return None


def changes_traits(event: LoggedEvent) -> bool:
    """Whether `apply_event` may change the profile's traits or consent for `event`.

    Most events (page views, product views) only move counters and channels; the profiles
    projection then leaves a profile's traits and consent unparsed and unwritten.
    Conservative: a traits object (even one that sets nothing new) counts as a change.
    """
    message = event.message
    traits = _event_traits(event, message, message.get("context"))
    if isinstance(traits, dict) and traits:
        return True
    return bool(consent_changes(message))


def apply_event(state: ProfileState, event: LoggedEvent) -> None:
    """Fold one event into the state (idempotence is the pipeline's job, by checkpoint)."""
    message = event.message
    at = event.timestamp
    state.first_seen = min(state.first_seen, at)
    state.last_seen = max(state.last_seen, at)
    state.event_count += 1
    state.last_offset = max(state.last_offset, event.offset)
    context = message.get("context")
    if isinstance(context, dict):
        channel = context.get("channel")
        if isinstance(channel, str):
            state.channels[channel] = state.channels.get(channel, 0) + 1
    if event.type == "track" and event.event in ORDER_EVENTS:
        state.order_count += 1

    traits = _event_traits(event, message, context)
    if isinstance(traits, dict):
        for key, value in traits.items():
            if key != "consent":
                _set_trait(state, key, value, at)
    changes = consent_changes(message)
    if changes:
        source = f"{event.type}:{event.source_id or 'api'}:{event.message_id}"
        for purpose, channel, granted in changes:
            _set_consent(state, purpose, channel, granted, at, source)


def merge_states(winner: ProfileState, loser: ProfileState) -> None:
    """Fold `loser` into `winner`; the result does not depend on which profile came first."""
    winner.first_seen = min(winner.first_seen, loser.first_seen)
    winner.last_seen = max(winner.last_seen, loser.last_seen)
    winner.event_count += loser.event_count
    winner.order_count += loser.order_count
    winner.last_offset = max(winner.last_offset, loser.last_offset)
    for channel, count in loser.channels.items():
        winner.channels[channel] = winner.channels.get(channel, 0) + count
    for key, value in loser.traits.items():
        _set_trait(winner, key, value, loser.trait_times.get(key, 0), merging=True)
    for purpose, by_channel in loser.consent.items():
        for channel, entry in by_channel.items():
            _set_consent(
                winner,
                purpose,
                channel,
                entry["granted"],
                entry["at"],
                entry["source"],
                merging=True,
            )
