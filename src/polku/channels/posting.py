"""One JSON POST to a partner's HTTP endpoint, and what its answer means for a retry.

The SMS gateway and webhook receivers are both "POST JSON, read the status": a 2xx took the
message; 429, 408 and 5xx answers, timeouts and refused connections may work later (`retry`
True); any other answer will not change by sending the same request again (`retry` False).
Redirects are not followed: a POST that is redirected loses its body in urllib, and a
partner's URL is configured once, so a 3xx is reported for the operator to fix.

Uses `urllib.request` from the standard library, so sending needs no HTTP client package.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import orjson

from polku.channels.base import SendResult

__all__ = ["USER_AGENT", "is_http_url", "post_json"]

USER_AGENT: Final = "Polku-Channels/1"
_MAX_ANSWER: Final = 64 * 1024
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(_NoRedirects())


def is_http_url(url: str) -> bool:
    """Whether `url` is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _provider_id(answer: bytes) -> str:
    try:
        body = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("id", "message_id"):
        value = body.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:200]
    return ""


def _excerpt(answer: bytes) -> str:
    text = answer[:200].decode("utf-8", "replace").strip()
    return f": {text}" if text else ""


def post_json(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, what: str
) -> SendResult:
    """POST `body` (JSON) to `url` and classify the answer; never raises.

    `what` names the far side in error texts (``the SMS gateway``, ``the webhook``). The
    result's `error` starts with a code (``http_503``, ``timeout``, ``connection_failed``,
    ``redirected``, ``invalid_address``), then says what happened.
    """
    if not is_http_url(url):
        return SendResult(
            ok=False,
            error=f"invalid_address: {what} URL {url[:100]!r} is not an http(s) URL",
            retry=False,
        )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **headers,
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            answer = response.read(_MAX_ANSWER)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            answer = exc.read(_MAX_ANSWER)
        except OSError:
            answer = b""
        finally:
            exc.close()
        if 300 <= status < 400:
            return SendResult(
                ok=False,
                error=f"redirected: {what} answered HTTP {status} (to "
                f"{exc.headers.get('Location', '?')!s:.100}); redirects are not followed, "
                "configure the final URL",
                retry=False,
                status=status,
            )
        retry = status >= 500 or status in _RETRY_STATUSES
        return SendResult(
            ok=False,
            error=f"http_{status}: {what} answered HTTP {status}{_excerpt(answer)}",
            retry=retry,
            status=status,
        )
    except TimeoutError as exc:
        return SendResult(
            ok=False,
            error=f"timeout: {what} did not answer within {timeout:g} s ({exc})",
            retry=True,
        )
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return SendResult(
                ok=False,
                error=f"timeout: {what} did not answer within {timeout:g} s",
                retry=True,
            )
        return SendResult(
            ok=False,
            error=f"connection_failed: could not reach {what} at {url[:100]} ({reason})",
            retry=True,
        )
    except (OSError, ValueError) as exc:  # a reset connection, a malformed answer
        return SendResult(
            ok=False, error=f"connection_failed: {what} at {url[:100]}: {exc}", retry=True
        )
    if 200 <= status < 300:
        return SendResult(ok=True, provider_id=_provider_id(answer), status=status)
    return SendResult(  # 1xx or another odd final status: not taken, may work later
        ok=False,
        error=f"http_{status}: {what} answered HTTP {status}{_excerpt(answer)}",
        retry=True,
        status=status,
    )
