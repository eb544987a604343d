"""What the channels record when the outside world answers a message: an unsubscribe, a
click on a tracked link, an SMS delivery report, an SMS reply.

Every one is an event in the log (a ``Consent Updated`` through
`polku.profiles.actions.set_consent`, or a track event stamped by collection's `prepare`
like a collected one), so it lands on the person's timeline, the journeys consumer sees it
(a goal, an exit, a delivery to match by its reference) and `polku replay` reproduces it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from polku.channels.links import StatusLink, TrackedLink, UnsubscribeLink
from polku.channels.queries import (
    CARRIER_ANONYMOUS_ID,
    event_carrier,
    profile_with_phone,
    workspace_exists,
)
from polku.collect.internal import internal_event
from polku.collect.validate import EventRejected, prepare
from polku.errors import InvalidField, NotFound
from polku.events import NewEvent, Receipt
from polku.identity.identifiers import normalise
from polku.profiles.actions import set_consent
from polku.profiles.queries import CONSENT_EVENT
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = [
    "CLICK_EVENT",
    "INBOUND_EVENT",
    "REPORT_EVENT",
    "SMS_REPLY_SOURCE",
    "STOP_WORDS",
    "UNSUBSCRIBE_SOURCE",
    "DeliveryReport",
    "InboundResult",
    "InboundSms",
    "check_workspace",
    "is_stop",
    "record_click",
    "record_delivery_report",
    "record_inbound_sms",
    "unsubscribe",
]

CLICK_EVENT: Final = "Message Link Clicked"
REPORT_EVENT: Final = "SMS Delivery Reported"
INBOUND_EVENT: Final = "SMS Received"
UNSUBSCRIBE_SOURCE: Final = "unsubscribe_link"
SMS_REPLY_SOURCE: Final = "sms_reply"
RECIPIENT: Final = "recipient"  # who asked, on the Consent Updated event
STOP_WORDS: Final = frozenset({"stop", "lopeta"})
"""A reply whose first word is one of these withdraws SMS marketing consent."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _stamp(runtime: Runtime, workspace: str, raw: dict[str, Any]) -> NewEvent:
    try:
        return prepare(
            raw,
            implied_type=None,
            received_at=_now_ms(),
            batch_sent_at=None,
            workspace_id=workspace,
            source_id="",
            max_event_bytes=runtime.settings.max_event_bytes,
            identity=runtime.identity,
        )
    except EventRejected as exc:
        rejection = exc.rejection
        raise InvalidField(
            rejection.message,
            field=(rejection.field or "").removeprefix("properties.") or None,
            hint="Correct the value and send it again.",
        ) from None


async def _append(runtime: Runtime, event: NewEvent) -> Receipt:
    return Receipt(await runtime.log.append([event]), event.partition_key)


def _carrier(runtime: Runtime, workspace: str, profile_id: str) -> dict[str, Any]:
    with translate_errors("reading the profile's identifiers"), runtime.engine.connect() as conn:
        return event_carrier(conn, workspace, profile_id, runtime.identity)


def _profile_event(
    carrier: dict[str, Any], event: str, properties: dict[str, Any], message_id: str, channel: str
) -> dict[str, Any]:
    context = {**carrier.pop("context", {}), **({"channel": channel} if channel else {})}
    raw = {
        **carrier,
        "type": "track",
        "event": event,
        "messageId": message_id,
        "properties": {**carrier.pop("properties", {}), **properties},
    }
    if context:
        raw["context"] = context
    return raw


def check_workspace(runtime: Runtime, workspace: str) -> None:
    """NotFound naming `workspace` unless it exists."""
    with translate_errors("reading workspaces"), runtime.engine.connect() as conn:
        known = workspace_exists(conn, workspace)
    if not known:
        raise NotFound(
            f"There is no workspace {workspace[:64]!r}.",
            field="workspace",
            hint="Leave the workspace parameter out for the default workspace, or name one "
            "that exists.",
        )


async def unsubscribe(runtime: Runtime, link: UnsubscribeLink) -> Receipt:
    """Withdraw the consent the link is for (its purpose on its channel), as the
    recipient asked; `NotFound` for a profile that no longer exists."""
    return await set_consent(
        runtime,
        link.workspace_id,
        link.profile_id,
        link.purpose,
        link.channel,
        False,
        source=UNSUBSCRIBE_SOURCE,
        requested_by=RECIPIENT,
    )


async def record_click(runtime: Runtime, link: TrackedLink) -> Receipt:
    """A ``Message Link Clicked`` event (properties `send_id`, `url`) on the link's profile."""
    carrier = await asyncio.to_thread(_carrier, runtime, link.workspace_id, link.profile_id)
    raw = _profile_event(
        carrier,
        CLICK_EVENT,
        {"send_id": link.send_id, "url": link.url},
        f"polku-click-{uuid.uuid4().hex}",
        "",
    )
    return await _append(runtime, _stamp(runtime, link.workspace_id, raw))


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What the gateway says became of a message: its `reference` (the idempotency key
    Polku sent) and/or its own `provider_id`, a `status` (``delivered``, ``failed``, ...)
    and, for a failure, the gateway's `error`."""

    status: str
    reference: str = ""
    provider_id: str = ""
    error: str = ""


async def record_delivery_report(
    runtime: Runtime, workspace: str, report: DeliveryReport, link: StatusLink | None
) -> Receipt:
    """An ``SMS Delivery Reported`` event. With the message's signed status link it is on
    the person's timeline; without, it is an event about no customer (keyed by the
    reference), which the journeys consumer still matches to its send."""
    reference = report.reference or (link.reference if link else "")
    if not reference and not report.provider_id:
        raise InvalidField(
            "A delivery report needs the message's reference or id.",
            field="reference",
            hint="Send the reference Polku gave the message (or the gateway's id for it).",
        )
    properties: dict[str, Any] = {"reference": reference, "status": report.status}
    if report.provider_id:
        properties["provider_id"] = report.provider_id
    if report.error:
        properties["error"] = report.error
    message_id = "polku-sms-report-" + _digest(
        reference, report.provider_id, report.status, report.error
    )
    if link is not None:
        carrier = await asyncio.to_thread(_carrier, runtime, link.workspace_id, link.profile_id)
        raw = _profile_event(carrier, REPORT_EVENT, properties, message_id, "sms")
        return await _append(runtime, _stamp(runtime, link.workspace_id, raw))
    await asyncio.to_thread(check_workspace, runtime, workspace)
    event = internal_event(
        workspace,
        REPORT_EVENT,
        properties,
        partition_key=f"sms:{reference or report.provider_id}",
        channel="sms",
        message_id=message_id,
    )
    return await _append(runtime, event)


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A text message a person sent to the retailer's number."""

    sender: str  # the person's phone, any format identity reads
    text: str
    to: str = ""
    provider_id: str = ""


@dataclass(frozen=True, slots=True)
class InboundResult:
    received: Receipt  # the SMS Received event
    stopped: Receipt | None  # the Consent Updated event of a STOP reply


def is_stop(text: str) -> bool:
    """Whether a reply asks to stop marketing texts (``STOP``, ``lopeta.``, ``Stop please``)."""
    words = text.strip().split(maxsplit=1)
    return bool(words) and words[0].strip(".!,;:").casefold() in STOP_WORDS


def _stop_event(workspace: str, runtime: Runtime, phone: str) -> NewEvent:
    """The Consent Updated event of a STOP from a number no profile holds yet: carried by
    the phone itself, so it joins whoever the number belongs to (as the SMS did)."""
    raw = {
        "type": "track",
        "event": CONSENT_EVENT,
        "anonymousId": CARRIER_ANONYMOUS_ID,
        "messageId": f"polku-consent-{uuid.uuid4().hex}",
        "context": {"device": {"shared": True}, "channel": "sms"},
        "properties": {
            "phone": phone,
            "purpose": "marketing",
            "channel": "sms",
            "granted": False,
            "source": SMS_REPLY_SOURCE,
            "requested_by": RECIPIENT,
        },
    }
    return _stamp(runtime, workspace, raw)


async def record_inbound_sms(runtime: Runtime, workspace: str, sms: InboundSms) -> InboundResult:
    """An ``SMS Received`` event identified by the sender's phone (so it joins the profile
    holding that number, or starts one), with `context.channel` ``sms``; a STOP/LOPETA
    reply also withdraws marketing consent on SMS."""
    phone = normalise("phone", sms.sender, runtime.identity)
    if phone is None:
        raise InvalidField(
            f"from: {sms.sender[:40]!r} is not a valid phone number.",
            field="from",
            hint="Send the sender's number in E.164 form, e.g. +358401234567.",
        )
    await asyncio.to_thread(check_workspace, runtime, workspace)
    properties: dict[str, Any] = {"from": phone, "text": sms.text}
    if sms.to:
        properties["to"] = sms.to
    if sms.provider_id:
        properties["provider_id"] = sms.provider_id
    message_id = (
        f"polku-sms-in-{_digest(phone, sms.provider_id)}"
        if sms.provider_id
        else f"polku-sms-in-{uuid.uuid4().hex}"
    )
    raw = {
        "type": "track",
        "event": INBOUND_EVENT,
        "anonymousId": CARRIER_ANONYMOUS_ID,
        "messageId": message_id,
        "context": {"channel": "sms", "device": {"shared": True}, "traits": {"phone": phone}},
        "properties": properties,
    }
    received = await _append(runtime, _stamp(runtime, workspace, raw))
    if not is_stop(sms.text):
        return InboundResult(received, None)

    def holder() -> str | None:
        with translate_errors("looking up the sender"), runtime.engine.connect() as conn:
            return profile_with_phone(conn, workspace, phone, runtime.identity)

    profile_id = await asyncio.to_thread(holder)
    if profile_id is None:
        stopped = await _append(runtime, _stop_event(workspace, runtime, phone))
    else:
        stopped = await set_consent(
            runtime,
            workspace,
            profile_id,
            "marketing",
            "sms",
            False,
            source=SMS_REPLY_SOURCE,
            requested_by=RECIPIENT,
        )
    return InboundResult(received, stopped)
