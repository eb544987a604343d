"""Turn one received Segment message into a stamped `NewEvent`, or say exactly what is wrong.

Follows the Segment HTTP Tracking API: the type comes from the endpoint (or the message in a
batch), ``userId`` or ``anonymousId`` is required, ``messageId`` is generated when missing,
``receivedAt`` is stamped, and the client's clock skew is corrected with
``timestamp = receivedAt - (sentAt - originalTimestamp)``. Known events (the e-commerce and
store vocabulary) have their properties type-checked; unknown events and properties are kept.

Whatever passes here can be appended to the log on SQLite and on PostgreSQL alike: the
indexed columns (messageId, event name, partition key) fit their column widths and hold no
NUL character, and the payload serialises. An event whose only identifiers are junk
(``"null"``, ``"guest"``, ...) is refused, because it could never join a profile.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from polku.collect.deadletters import Rejection
from polku.collect.vocabulary import check_properties
from polku.events import CHANNELS, MESSAGE_TYPES, NewEvent, to_iso
from polku.identity.identifiers import MAX_VALUE_LENGTH, IdentityConfig, extract, junk_reason
from polku.privacy.cards import CODE as CARD_NUMBER
from polku.privacy.cards import find_card_number

__all__ = ["EventRejected", "prepare"]

_CHANNELS: Final = frozenset(CHANNELS)
_OBJECT_FIELDS: Final = ("properties", "traits", "context", "integrations")
_MAX_ID = MAX_VALUE_LENGTH  # longer ids could never be matched by identity resolution
_MAX_MESSAGE_ID = 200  # width of log_events.message_id
_MAX_NAME = 200  # width of log_events.event
_MAX_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z; timestamps start at 1970
_APP_LIBRARIES: Final = ("ios", "android", "react-native", "flutter", "kotlin", "swift", "xamarin")


class EventRejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def _reject(
    code: str, field: str | None, message: str, raw: Any, index: int | None
) -> EventRejected:
    message_id = raw.get("messageId") if isinstance(raw, dict) else None
    return EventRejected(
        Rejection(
            code=code,
            message=message,
            field=field,
            index=index,
            message_id=message_id if isinstance(message_id, str) else None,
            payload=raw,
        )
    )


def _show(value: Any) -> str:
    """A short repr of a client's value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=4096)
def _iso_ms(value: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 date-time (UTC when it has no offset); None when it
    is not one. Cached: a batch's sentAt, and often its events' timestamps, repeat."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        return None


def _parse_time(value: Any, field: str, raw: Any, index: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _reject(
            "invalid_timestamp",
            field,
            f"{field} must be an ISO-8601 string such as 2026-11-22T10:15:00.000Z "
            f"(got {type(value).__name__}).",
            raw,
            index,
        )
    ms = _iso_ms(value)
    if ms is None:
        raise _reject(
            "invalid_timestamp",
            field,
            f"{field} {_show(value)} is not an ISO-8601 date-time; send e.g. "
            "2026-11-22T10:15:00.000Z.",
            raw,
            index,
        )
    if not 0 <= ms <= _MAX_MS:
        raise _reject(
            "invalid_timestamp",
            field,
            f"{field} {_show(value)} is outside 1970-01-01 .. 9999-12-31; check the "
            "client's clock or the value sent.",
            raw,
            index,
        )
    return ms


def _identifier(value: Any, field: str, raw: Any, index: int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _reject(
            "invalid_field",
            field,
            f"{field} must be a string (got {type(value).__name__}).",
            raw,
            index,
        )
    text = str(value) if isinstance(value, int) else value.strip()
    if len(text) > _MAX_ID:
        raise _reject(
            "invalid_field", field, f"{field} is longer than {_MAX_ID} characters.", raw, index
        )
    if "\x00" in text:
        raise _reject(
            "invalid_field",
            field,
            f"{field} contains a NUL character; send the id as plain text.",
            raw,
            index,
        )
    return text or None


def _junk(type_name: str, value: str, config: IdentityConfig) -> str | None:
    """Why `value` is junk as `type_name`, or None (also when the type is switched off)."""
    try:
        return junk_reason(type_name, value, config)
    except KeyError:
        return None


def _check_identity(
    msg: dict[str, Any],
    user_id: str | None,
    anonymous_id: str | None,
    config: IdentityConfig,
    raw: Any,
    index: int | None,
) -> None:
    """Refuse an event whose userId/anonymousId are all junk and that has no other identifier.

    The junk check is a few set lookups; `extract` (slower) runs only when every id present
    is junk, which is rare.
    """
    user_junk = _junk("user_id", user_id, config) if user_id is not None else None
    if user_id is not None and user_junk is None:
        return
    anon_junk = _junk("anonymous_id", anonymous_id, config) if anonymous_id is not None else None
    if anonymous_id is not None and anon_junk is None:
        return
    if any(not ident.shared for ident in extract(msg, config)):
        return  # e.g. an email in traits or a loyalty card in properties identifies the person
    blocked = [
        f"{name} {value!r} is not usable ({reason})"
        for name, value, reason in (
            ("userId", user_id, user_junk),
            ("anonymousId", anonymous_id, anon_junk),
        )
        if value is not None
    ]
    raise _reject(
        "junk_identity",
        "userId" if user_id is not None else "anonymousId",
        "; ".join(blocked) + ", and the event carries no other identifier. Send the signed-in "
        "customer's real id as userId, or a stable random id for the browser or device (a "
        "UUID) as anonymousId; leave placeholders such as 'null' or 'guest' out.",
        raw,
        index,
    )


def _name(value: str, field: str, raw: Any, index: int | None) -> str:
    """`value` unless it holds a NUL character, which no PostgreSQL text column can store."""
    if "\x00" in value:
        raise _reject("invalid_field", field, f"{field} contains a NUL character.", raw, index)
    return value


def _derive_channel(context: dict[str, Any]) -> str | None:
    library = context.get("library")
    name = library.get("name", "") if isinstance(library, dict) else ""
    name = name.lower() if isinstance(name, str) else ""
    if "page" in context or "analytics.js" in name or "analytics-next" in name:
        return "web"
    if "app" in context or any(part in name for part in _APP_LIBRARIES):
        return "app"
    return None


def prepare(
    raw: Any,
    *,
    implied_type: str | None,
    received_at: int,
    batch_sent_at: Any,
    workspace_id: str,
    source_id: str,
    max_event_bytes: int,
    identity: IdentityConfig,
    index: int | None = None,
    batch_context: Mapping[str, Any] | None = None,
) -> NewEvent:
    """Validate and stamp one message; raise `EventRejected` naming the field at fault.

    `batch_context` is the ``context`` of the enclosing batch request; the Segment HTTP API
    merges it into every message, the message's own keys winning.
    """
    if not isinstance(raw, dict):
        raise _reject(
            "invalid_event",
            None if index is None else f"batch[{index}]",
            f"An event must be a JSON object (got {type(raw).__name__}).",
            raw,
            index,
        )
    msg = dict(raw)
    msg.pop("writeKey", None)
    # First, so that no rejection, for this or any other reason, keeps a card number.
    card = find_card_number(msg)
    if card is not None:
        raise _reject(CARD_NUMBER, card.field, card.message, card.redacted, index)

    declared = msg.get("type")
    if implied_type is not None:
        if declared is not None and declared != implied_type:
            where = (
                f"post it to /v1/{declared}"
                if isinstance(declared, str) and declared in MESSAGE_TYPES
                else f'set it to "{implied_type}"'
            )
            raise _reject(
                "type_mismatch",
                "type",
                f"type {_show(declared)} does not match the endpoint /v1/{implied_type}; "
                f"leave type out or {where}.",
                raw,
                index,
            )
        kind = implied_type
    elif isinstance(declared, str) and declared in MESSAGE_TYPES:
        kind = declared
    else:
        raise _reject(
            "unknown_type" if declared is not None else "missing_type",
            "type",
            f"type must be one of {', '.join(sorted(MESSAGE_TYPES))} (got {_show(declared)}).",
            raw,
            index,
        )
    msg["type"] = kind

    for object_field in _OBJECT_FIELDS:
        value = msg.get(object_field)
        if value is not None and not isinstance(value, dict):
            raise _reject(
                "invalid_field",
                object_field,
                f"{object_field} must be a JSON object (got {type(value).__name__}).",
                raw,
                index,
            )

    user_id = _identifier(msg.get("userId"), "userId", raw, index)
    anonymous_id = _identifier(msg.get("anonymousId"), "anonymousId", raw, index)
    if user_id is None and anonymous_id is None:
        raise _reject(
            "missing_identity",
            "userId",
            "Every event needs a userId or an anonymousId; send the logged-in user's id as "
            "userId, or a stable random id for the device as anonymousId.",
            raw,
            index,
        )
    # Store the trimmed ids; an empty or null one is left out, as if it had not been sent.
    for key, value in (("userId", user_id), ("anonymousId", anonymous_id)):
        if value is None:
            msg.pop(key, None)
        else:
            msg[key] = value

    event_name: str | None = None
    if kind == "track":
        given = msg.get("event")
        if not isinstance(given, str) or not given.strip():
            raise _reject(
                "missing_event",
                "event",
                "A track call needs the event name as a non-empty string in `event`, "
                'e.g. "Product Viewed".',
                raw,
                index,
            )
        event_name = _name(given.strip(), "event", raw, index)
        if len(event_name) > _MAX_NAME:
            raise _reject(
                "invalid_field",
                "event",
                f"The event name is {len(event_name)} characters; the limit is {_MAX_NAME}. "
                'Name the action (e.g. "Product Viewed") and put details in properties.',
                raw,
                index,
            )
        msg["event"] = event_name
    elif kind in ("page", "screen"):
        given = msg.get("name")
        if given is not None and not isinstance(given, str):
            raise _reject(
                "invalid_field",
                "name",
                f"name must be a string (got {type(given).__name__}).",
                raw,
                index,
            )
        # Page names may be long titles: kept whole in the message, cut for the log's column.
        event_name = None if given is None else _name(given, "name", raw, index)[:_MAX_NAME]
    elif kind == "group":
        group_id = _identifier(msg.get("groupId"), "groupId", raw, index)
        if group_id is None:
            raise _reject("missing_field", "groupId", "A group call needs a groupId.", raw, index)
        msg["groupId"] = group_id
    elif kind == "alias":
        previous = _identifier(msg.get("previousId"), "previousId", raw, index)
        if previous is None or user_id is None:
            raise _reject(
                "missing_field",
                "previousId" if previous is None else "userId",
                "An alias call needs both previousId (the old id) and userId (the new one).",
                raw,
                index,
            )
        msg["previousId"] = previous

    given_id = msg.get("messageId")
    if given_id is None or given_id == "":
        given_id = "polku-" + uuid.uuid4().hex
    elif isinstance(given_id, bool) or not isinstance(given_id, (str, int)):
        raise _reject(
            "invalid_field",
            "messageId",
            f"messageId must be a string (got {type(given_id).__name__}).",
            raw,
            index,
        )
    message_id = str(given_id)
    if len(message_id) > _MAX_MESSAGE_ID:
        raise _reject(
            "invalid_field",
            "messageId",
            f"messageId is longer than {_MAX_MESSAGE_ID} characters; send a UUID.",
            raw,
            index,
        )
    message_id = _name(message_id, "messageId", raw, index)
    msg["messageId"] = message_id

    context = msg.get("context")
    if batch_context:
        context = {**batch_context, **(context or {})}
    else:
        context = {} if context is None else dict(context)
    msg["context"] = context
    channel = context.get("channel")
    if channel is None:
        channel = _derive_channel(context)
        if channel is not None:
            context["channel"] = channel
    elif not isinstance(channel, str) or channel not in _CHANNELS:
        raise _reject(
            "invalid_channel",
            "context.channel",
            f"context.channel must be one of {', '.join(CHANNELS)} (got {_show(channel)}).",
            raw,
            index,
        )

    if event_name is not None and kind == "track":
        # Also without properties: a known event may require some (Store Visited: store_id).
        problems = check_properties(event_name, msg.get("properties") or {})
        if problems:
            first = problems[0]
            raise _reject(first.code, first.field, first.message, raw, index)

    original = _parse_time(msg.get("originalTimestamp"), "originalTimestamp", raw, index)
    client_ts = _parse_time(msg.get("timestamp"), "timestamp", raw, index)
    sent_raw = msg.get("sentAt")
    if sent_raw is None:
        sent_raw = batch_sent_at  # the SDKs stamp sentAt once per batch
    sent_at = _parse_time(sent_raw, "sentAt", raw, index)
    if original is None:
        original = client_ts
    if original is not None and sent_at is not None:
        timestamp = received_at - (sent_at - original)
    elif original is not None:
        timestamp = original
    else:
        timestamp = received_at
    if not 0 <= timestamp <= _MAX_MS:
        raise _reject(
            "invalid_timestamp",
            "sentAt",
            f"Correcting the client's clock (receivedAt - (sentAt - originalTimestamp)) gives "
            f"a time outside 1970..9999; sentAt {_show(sent_raw)} and the event's timestamp "
            "are too far apart. Send both from the same clock.",
            raw,
            index,
        )
    if original is not None:
        msg["originalTimestamp"] = to_iso(original)
    if sent_at is not None:
        msg["sentAt"] = to_iso(sent_at)
    msg["receivedAt"] = to_iso(received_at)
    msg["timestamp"] = to_iso(timestamp)

    _check_identity(msg, user_id, anonymous_id, identity, raw, index)

    try:
        payload = orjson.dumps(msg)
    except orjson.JSONEncodeError:  # the one way a parsed message fails: nesting too deep
        raise _reject(
            "invalid_event",
            None,
            "The event is nested too deeply to store (more than 250 levels of objects and "
            "arrays); flatten its properties.",
            {"messageId": message_id, "type": kind, "event": event_name},
            index,
        ) from None
    if len(payload) > max_event_bytes:
        raise _reject(
            "event_too_large",
            None,
            f"The event is {len(payload)} bytes; the limit is {max_event_bytes} bytes "
            "(32 KB as in Segment). Send fewer or smaller properties.",
            {"messageId": message_id, "type": kind, "event": event_name},
            index,
        )

    return NewEvent(
        workspace_id=workspace_id,
        source_id=source_id,
        message_id=message_id,
        type=kind,
        event=event_name,
        partition_key=user_id or anonymous_id or "",
        received_at=received_at,
        timestamp=timestamp,
        payload=payload,
    )
