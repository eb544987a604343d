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
from typing import Any
from urllib.parse import quote

import orjson

__all__ = ["make_token", "read_token", "tracked_url", "unsubscribe_url"]

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
) -> str:
    """The one-click unsubscribe link (GET shows a page, POST unsubscribes: RFC 8058)."""
    token = make_token(secret, {"w": workspace_id, "p": profile_id, "u": purpose, "c": channel})
    return f"{base_url.rstrip('/')}/u/{quote(token)}"


def tracked_url(
    base_url: str, secret: str, *, workspace_id: str, profile_id: str, send_id: str, url: str
) -> str:
    """A link that records a click on the profile's timeline, then redirects to `url`."""
    token = make_token(secret, {"w": workspace_id, "p": profile_id, "s": send_id, "t": url})
    return f"{base_url.rstrip('/')}/l/{quote(token)}"
