"""`MetricsMiddleware`: times every HTTP request into `polku_http_request_duration_seconds`.

A pure ASGI middleware (no `BaseHTTPMiddleware`, which copies the body through a task and
costs more than the work it measures): one clock read at each end and one histogram
observation per request, so the ingest path pays microseconds per request, nothing per event.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics import Histogram

from polku.ops.metrics import HTTP_REQUEST_SECONDS

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MetricsMiddleware"]

# Label values come from these sets only, so a client sending odd methods or random paths
# cannot create new time series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
"""The `route` label of requests that matched no route (404s, slash redirects)."""


class MetricsMiddleware:
    """Observe each HTTP request's duration by route template, method and status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # labels() validates and locks on every call; the few children are cached here.
        self._children: dict[tuple[str, str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            # The error middleware outside us turns it into a 500 (or the client went away).
            status = status or 500
            raise
        finally:
            self._child(scope, status).observe(time.perf_counter() - start)

    def _child(self, scope: Scope, status: int) -> Histogram:
        method = scope.get("method", "")
        key = (
            _route_template(scope.get("route")),
            method if method in _METHODS else "other",
            f"{status // 100}xx" if status else "none",
        )
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = HTTP_REQUEST_SECONDS.labels(*key)
        return child


def _route_template(route: Any) -> str:
    """The path template the router matched (`/v1/projects/{write_key}/settings`)."""
    if route is None:
        return UNMATCHED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED
