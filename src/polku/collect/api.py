"""HTTP routes of the Segment-compatible collection API and the event debugger.

Wire-compatible with the Segment HTTP Tracking API (``/v1/track`` ... ``/v1/batch``) and with
the short paths the browser library ``@segment/analytics-next`` posts to (``/v1/t``,
``/v1/i``, ``/v1/p``, ``/v1/s``, ``/v1/g``, ``/v1/a``, batched ``/v1/b``, metrics ``/v1/m``),
plus the settings document it fetches from its CDN (``/v1/projects/{writeKey}/settings``),
so a web shop keeps its snippet and changes only the host.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from polku.collect.deadletters import list_rejections
from polku.collect.intake import IntakeResult
from polku.collect.live import live_stream
from polku.collect.queries import recent_events
from polku.errors import BadRequest, PayloadTooLarge
from polku.events import to_iso
from polku.http import AdminWorkspace, basic_auth_username, json_response, runtime

__all__ = ["router"]

router = APIRouter()

_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Segment message. userId or anonymousId is required.",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "identify", "page", "screen", "group", "alias"],
        },
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string", "description": "Deduplication key; generated if absent."},
        "event": {"type": "string", "description": "track: the event name."},
        "name": {"type": "string", "description": "page/screen: the page name."},
        "groupId": {"type": "string"},
        "previousId": {"type": "string"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {
            "type": "object",
            "properties": {
                "channel": {
                    "type": "string",
                    "enum": ["web", "app", "store", "chat", "email", "sms", "phone"],
                }
            },
        },
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string", "description": "Alternative to HTTP Basic auth."},
    },
}
_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": _MESSAGE_SCHEMA},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string"},
        "context": {"type": "object"},
    },
}


def _openapi(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
        },
        "security": [{"writeKey": []}],
    }


_NO_NUL = r"^[^\x00]*$"  # query values reach SQL; PostgreSQL cannot compare a NUL
_MAX_BIGINT = 2**63 - 1  # larger page cursors overflow the databases' integer parameters


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to hold more than `limit` bytes (also when chunked)."""
    too_large = PayloadTooLarge(
        f"The request body is over {limit} bytes.",
        hint="Send at most 500 KB per batch and 32 KB per event, as Segment allows.",
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest(
            "The client closed the connection before the body arrived.",
            code="incomplete_body",
            hint="Send the request again; nothing of it was stored.",
        ) from None
    return b"".join(chunks)


def _basic_user(request: Request) -> str | None:
    """The write key in the Basic ``Authorization`` header; None for a header that has none.

    A header with non-ASCII bytes makes `base64.b64decode` raise ValueError; that is a header
    without a usable key (answered 401), not a server error.
    """
    try:
        return basic_auth_username(request.headers.get("authorization"))
    except ValueError:
        return None


async def _receive(request: Request, endpoint: str, implied_type: str | None) -> Response:
    rt = runtime(request)
    basic_user = _basic_user(request)
    try:
        body = await _read_body(request, rt.settings.max_body_bytes)
    except PayloadTooLarge as exc:
        await rt.intake.refuse(endpoint, exc, basic_user=basic_user)
        raise
    result = await rt.intake.receive(
        endpoint,
        body,
        content_encoding=request.headers.get("content-encoding"),
        basic_user=basic_user,
        implied_type=implied_type,
    )
    return _respond(result, implied_type is None)


def _respond(result: IntakeResult, is_batch: bool) -> Response:
    if result.rejected and not result.accepted:
        first = result.rejected[0]
        status = 413 if first.code == "event_too_large" and not is_batch else 400
        return json_response(
            {
                "success": False,
                "error": {
                    "code": "batch_rejected" if is_batch else first.code,
                    "message": (
                        f"All {len(result.rejected)} events were rejected; see `rejected`."
                        if is_batch
                        else first.message
                    ),
                    **({"field": first.field} if first.field and not is_batch else {}),
                    "hint": "Fix the events and send them again; rejected events are listed at "
                    "GET /v1/debugger/rejections.",
                },
                "rejected": [r.as_dict() for r in result.rejected],
            },
            status,
        )
    body: dict[str, Any] = {"success": True}
    if is_batch:
        body["accepted"] = result.accepted
    if result.rejected:
        body["rejected"] = [r.as_dict() for r in result.rejected]
    return json_response(body)


def _message_route(path: str, message_type: str, short: str) -> None:
    async def endpoint(request: Request) -> Response:
        return await _receive(request, message_type, message_type)

    endpoint.__name__ = f"collect_{message_type}"
    endpoint.__doc__ = (
        f"Record a {message_type} message (Segment HTTP Tracking API). Authenticate with the "
        "write key as HTTP Basic username or `writeKey` in the body; gzip bodies are accepted."
    )
    router.add_api_route(
        path, endpoint, methods=["POST"], tags=["collect"], openapi_extra=_openapi(_MESSAGE_SCHEMA)
    )
    router.add_api_route(f"/v1/{short}", endpoint, methods=["POST"], include_in_schema=False)


for _type, _short in (
    ("track", "t"),
    ("identify", "i"),
    ("page", "p"),
    ("screen", "s"),
    ("group", "g"),
    ("alias", "a"),
):
    _message_route(f"/v1/{_type}", _type, _short)


@router.post("/v1/batch", tags=["collect"], openapi_extra=_openapi(_BATCH_SCHEMA))
async def collect_batch(request: Request) -> Response:
    """Record up to 500 KB of messages at once. Valid messages are kept even when others are
    rejected; the response lists each rejected message by its index."""
    return await _receive(request, "batch", None)


@router.post("/v1/import", tags=["collect"], include_in_schema=False)
async def collect_import(request: Request) -> Response:
    return await _receive(request, "batch", None)


@router.post("/v1/b", include_in_schema=False)
async def collect_batch_short(request: Request) -> Response:
    return await _receive(request, "batch", None)


@router.post("/v1/m", include_in_schema=False)
async def sdk_metrics(request: Request) -> Response:
    """analytics-next's own delivery metrics: accepted so the browser stops retrying."""
    await _read_body(request, runtime(request).settings.max_event_bytes)
    return json_response({"success": True})


@router.get("/v1/projects/{write_key}/settings", tags=["collect"])
async def browser_settings(write_key: str, request: Request) -> Response:
    """The settings document analytics-next loads at start-up (its ``cdnURL``). It points the
    browser's Segment.io destination at this Polku."""
    rt = runtime(request)
    if rt.intake.source(write_key) is None:
        return json_response(
            {
                "error": {
                    "code": "unknown_write_key",
                    "message": f"Unknown or revoked write key {write_key[:12]!r}….",
                    "field": "writeKey",
                    "hint": "Use a key listed by `polku keys list`.",
                }
            },
            404,
        )
    base = rt.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    scheme, _, host = base.partition("://")
    return json_response(
        {
            "integrations": {
                "Segment.io": {
                    "apiKey": write_key,
                    "apiHost": f"{host}/v1",
                    "protocol": scheme,
                    "unbundledIntegrations": [],
                    "addBundledMetadata": True,
                }
            },
            "plan": {
                "track": {"__default": {"enabled": True}},
                "identify": {"__default": {"enabled": True}},
            },
            "edgeFunction": {},
            "analyticsNextEnabled": True,
            "middlewareSettings": {},
            "enabledMiddleware": {},
            "metrics": {"sampleRate": 0},
            "legacyVideoPluginsEnabled": False,
            "remotePlugins": [],
        }
    )


@router.get("/v1/debugger/rejections", tags=["debugger"])
def debugger_rejections(
    request: Request,
    workspace: AdminWorkspace,
    limit: int = Query(100, ge=1, le=1000),
    before_id: int | None = Query(
        None, ge=0, le=_MAX_BIGINT, description="Page: only rejections older than this id."
    ),
    code: str | None = Query(None, description="Only this error code.", pattern=_NO_NUL),
) -> Response:
    """Rejected events and requests, newest first, with the reason and the field at fault."""
    rt = runtime(request)
    with rt.engine.connect() as conn:
        items = list_rejections(conn, workspace, limit=limit, before_id=before_id, code=code)
    for item in items:
        item["received_at"] = to_iso(item["received_at"])
    return json_response({"rejections": items})


@router.get("/v1/debugger/events", tags=["debugger"])
def debugger_events(
    request: Request,
    workspace: AdminWorkspace,
    limit: int = Query(50, ge=1, le=500),
    before_offset: int | None = Query(
        None, ge=0, le=_MAX_BIGINT, description="Page: only events older than this."
    ),
    message_id: str | None = Query(None, alias="messageId", pattern=_NO_NUL),
) -> Response:
    """The newest accepted events as stored in the log, to check what arrived from where."""
    rt = runtime(request)
    with rt.engine.connect() as conn:
        events = recent_events(
            conn, workspace, limit=limit, before_offset=before_offset, message_id=message_id
        )
    return json_response({"events": events})


@router.get(
    "/v1/debugger/live",
    tags=["debugger"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def debugger_live(
    request: Request,
    workspace: AdminWorkspace,
    limit: int | None = Query(None, ge=1, le=1_000_000, description="Stop after this many."),
    seconds: float | None = Query(None, gt=0, le=86_400, description="Stop after this long."),
) -> StreamingResponse:
    """Live: every event accepted and every request or event refused in this workspace from
    now on, whichever API process took it, as server-sent events (`event: event` and
    `event: rejection`, JSON in `data`; `event: ready` first, once the watch is in place).
    Open it in a browser's EventSource or with `curl -N`."""
    feed = runtime(request).live.watch(workspace)
    return StreamingResponse(
        live_stream(feed, limit=limit, seconds=seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
