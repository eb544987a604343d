"""Changes to profiles that people ask for (the API, the console, the CLI, workers).

A profile is a projection of the log, so an action never writes the profiles table: it
appends an event that the pipeline applies like any collected one, which is what makes
`polku replay` reproduce it and keeps the evidence for every consent in the log.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from polku.collect.validate import EventRejected, prepare
from polku.errors import InvalidField
from polku.events import CHANNELS, NewEvent, Receipt
from polku.identity.queries import event_carrier
from polku.profiles.queries import CONSENT_EVENT
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = ["ALL_CHANNELS", "set_consent"]

ALL_CHANNELS: Final = "*"
"""The consent channel that answers for every channel."""

_MAX_PURPOSE: Final = 100
_MAX_SOURCE: Final = 200
# Stands in for the browser id an event must have when the profile has none. It is marked as
# coming from a shared device, so identity resolution never attaches it to anyone.
_CARRIER_ANONYMOUS_ID: Final = "polku-profile-action"


def _checked_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(
            f"{name} must be a non-empty string.",
            field=name,
            hint="e.g. purpose `marketing`, source `preference_centre`.",
        )
    text = value.strip()
    if len(text) > limit or not text.isprintable():
        raise InvalidField(
            f"{name} must be at most {limit} printable characters.",
            field=name,
            hint="Send a short name such as `marketing`.",
        )
    return text


def _carrier(runtime: Runtime, workspace: str, profile_id: str) -> dict[str, Any]:
    """The identity fields of an event that identity resolution gives to `profile_id`
    (`polku.identity.queries.event_carrier`)."""
    with translate_errors("reading the profile's identifiers"), runtime.engine.connect() as conn:
        return event_carrier(
            conn, workspace, profile_id, runtime.identity, device=_CARRIER_ANONYMOUS_ID
        )


async def set_consent(
    runtime: Runtime,
    workspace: str,
    profile_id: str,
    purpose: str,
    channel: str,
    granted: bool,
    source: str = "api",
    *,
    requested_by: str = "admin_api",
) -> Receipt:
    """Record that the person behind `profile_id` gave (`granted`) or withdrew consent for
    `purpose` on `channel` (one of `polku.events.CHANNELS`, or ``"*"`` for all of them);
    `source` says where (``preference_centre``, ``store``, ...). Return where it went in the
    log.

    Appends a ``Consent Updated`` track event for the profile, stamped like a collected one;
    the profiles consumer applies it (last-write-wins by event time, per purpose and channel).
    Wait for the pipeline to process it (`Runtime.progress.wait_for`) to read the result.

    Raises `InvalidField` for a bad purpose, channel or source, `NotFound` for an unknown
    profile, `Conflict` for a profile no event could be attributed to.
    """
    purpose = _checked_text(purpose, "purpose", _MAX_PURPOSE)
    source = _checked_text(source, "source", _MAX_SOURCE)
    if not isinstance(channel, str) or channel.strip() not in (*CHANNELS, ALL_CHANNELS):
        raise InvalidField(
            f"Unknown consent channel {str(channel)[:40]!r}.",
            field="channel",
            hint=f"Use one of {', '.join(CHANNELS)}, or * for every channel.",
        )
    if not isinstance(granted, bool):
        raise InvalidField(
            "granted must be true or false.", field="granted", hint="Send a JSON boolean."
        )
    carrier = await asyncio.to_thread(_carrier, runtime, workspace, profile_id)
    properties: dict[str, Any] = {
        **carrier.pop("properties", {}),
        "purpose": purpose,
        "channel": channel.strip(),
        "granted": granted,
        "source": source,
        "requested_by": requested_by,
    }
    raw = {
        **carrier,
        "type": "track",
        "event": CONSENT_EVENT,
        "messageId": f"polku-consent-{uuid.uuid4().hex}",
        "properties": properties,
    }
    try:
        event: NewEvent = prepare(
            raw,
            implied_type=None,
            received_at=int(time.time() * 1000),
            batch_sent_at=None,
            workspace_id=workspace,
            source_id="",
            max_event_bytes=runtime.settings.max_event_bytes,
            identity=runtime.identity,
        )
    except EventRejected as exc:  # only reachable through a value checked above
        rejection = exc.rejection
        field = (rejection.field or "").removeprefix("properties.") or None
        raise InvalidField(
            rejection.message, field=field, hint="Correct the value and send it again."
        ) from None
    return Receipt(await runtime.log.append([event]), event.partition_key)
