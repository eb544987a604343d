"""Signed links in messages: one-click unsubscribe and tracked links.

A link carries what it is about (workspace, profile, purpose and channel; or the send and
the target URL) in a token that Polku signed with the channel secret, so the endpoint that
takes it needs no lookup to trust it and a guessed or edited link is refused. Tokens are
URL-safe base64 of compact JSON, a dot, and a truncated HMAC-SHA256 of that text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

__all__ = [
    "StatusLink",
    "TrackedLink",
    "UnsubscribeLink",
    "make_token",
    "read_status",
    "read_token",
    "read_tracked",
    "read_unsubscribe",
    "sms_status_url",
    "tracked_url",
    "unsubscribe_url",
]

_MAC_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return _b64(digest[:_MAC_BYTES])


def make_token(secret: str, payload: dict[str, Any]) -> str:
    """`payload` signed with `secret`, as one URL-safe string."""
    body = _b64(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    return f"{body}.{_mac(secret, body)}"


def read_token(secret: str, token: str) -> dict[str, Any] | None:
    """The payload of a token `secret` signed, or None for anything else."""
    if not token.isascii():  # compare_digest refuses non-ASCII text; no token of ours has it
        return None
    body, dot, mac = token.partition(".")
    if not dot or not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    try:
        payload = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def unsubscribe_url(
    base_url: str,
    secret: str,
    *,
    workspace_id: str,
    profile_id: str,
    purpose: str,
    channel: str,
    locale: str = "",
) -> str:
    """The one-click unsubscribe link (GET shows a page, POST unsubscribes: RFC 8058).

    `locale` (``fi``, ``en``) picks the language of its pages; without it the recipient's
    browser's Accept-Language does.
    """
    payload = {"w": workspace_id, "p": profile_id, "u": purpose, "c": channel}
    if locale:
        payload["l"] = locale
    token = make_token(secret, payload)
    return f"{base_url.rstrip('/')}/u/{quote(token)}"


def tracked_url(
    base_url: str, secret: str, *, workspace_id: str, profile_id: str, send_id: str, url: str
) -> str:
    """A link that records a click on the profile's timeline, then redirects to `url`."""
    token = make_token(secret, {"w": workspace_id, "p": profile_id, "s": send_id, "t": url})
    return f"{base_url.rstrip('/')}/l/{quote(token)}"


def sms_status_url(
    base_url: str, secret: str, *, workspace_id: str, profile_id: str, reference: str
) -> str:
    """Where the SMS gateway posts the delivery reports of one message; the signed token
    says whose message it was, so the report lands on that profile's timeline."""
    token = make_token(secret, {"w": workspace_id, "p": profile_id, "r": reference})
    return f"{base_url.rstrip('/')}/v1/channels/sms/reports?token={quote(token)}"


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    workspace_id: str
    profile_id: str
    purpose: str
    channel: str
    locale: str = ""


@dataclass(frozen=True, slots=True)
class TrackedLink:
    workspace_id: str
    profile_id: str
    send_id: str
    url: str


@dataclass(frozen=True, slots=True)
class StatusLink:
    workspace_id: str
    profile_id: str
    reference: str


def _texts(payload: dict[str, Any] | None, *keys: str) -> list[str] | None:
    if payload is None:
        return None
    values = [payload.get(key) for key in keys]
    if not all(isinstance(v, str) and v for v in values):
        return None
    return [str(v) for v in values]


def read_unsubscribe(secret: str, token: str) -> UnsubscribeLink | None:
    """What an unsubscribe token says, or None when Polku did not sign it as one."""
    payload = read_token(secret, token)
    found = _texts(payload, "w", "p", "u", "c")
    if payload is None or found is None:
        return None
    workspace_id, profile_id, purpose, channel = found
    locale = payload.get("l", "")
    return UnsubscribeLink(
        workspace_id, profile_id, purpose, channel, locale if isinstance(locale, str) else ""
    )


def read_tracked(secret: str, token: str) -> TrackedLink | None:
    """What a tracked-link token says, or None when Polku did not sign it as one or its
    target is not an absolute http(s) URL (so a link can never send anyone elsewhere)."""
    found = _texts(read_token(secret, token), "w", "p", "s", "t")
    if found is None or not found[3].isprintable() or any(c.isspace() for c in found[3]):
        return None
    try:
        target = urlsplit(found[3])
    except ValueError:
        return None
    if target.scheme not in ("http", "https") or not target.hostname:
        return None
    return TrackedLink(*found)


def read_status(secret: str, token: str) -> StatusLink | None:
    """What an SMS status token says, or None when Polku did not sign it as one."""
    found = _texts(read_token(secret, token), "w", "p", "r")
    return None if found is None else StatusLink(*found)
