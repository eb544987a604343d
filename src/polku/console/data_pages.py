"""The console's data pages: the live event debugger (what arrived, from which source, what
was rejected and why, one event's JSON, one rejection's reason and body as received), the
write keys and sources, the channels (SMTP and the SMS gateway read-only, as the server's
`POLKU_*` environment set them, with a test email and a test SMS; the CRM webhooks, created
and removed here, with their recent deliveries) and the users.

The debugger's list is a fragment (`/console/data/events`) filtered by source and kind in
SQL (`polku.collect.debugger`) and paged by cursors (`before`: a log offset,
`before_rejected`: a rejection id). On its newest page it is live like the signal list:
`/console/data/stream` sends `event: changed` when the workspace's marker (newest offset and
rejection id) moves, and `static/console.js` fetches the fragment; without EventSource it
polls every `REFRESH_SECONDS`. Write keys and webhook secrets are shown in full only once,
on the page that answers their creation."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Engine

from polku.access import actions as access_actions
from polku.access import queries as access_queries
from polku.channels.base import Message
from polku.channels.email import EmailChannel
from polku.channels.sms import SmsChannel
from polku.collect import debugger as debugger_queries
from polku.collect.queries import recent_events
from polku.console import actions as console_actions
from polku.console import queries as console_queries
from polku.console.i18n import explain, text
from polku.console.web import (
    HEADERS,
    Form,
    Viewer,
    locale_of,
    posted,
    redirect,
    refused,
    render,
    signed_in,
)
from polku.errors import InvalidField, PolkuError
from polku.http import runtime
from polku.identity.identifiers import normalise
from polku.settings import SETTINGS, Secret
from polku.signals import actions as signal_actions
from polku.signals import queries as signal_queries
from polku.storage.engine import translate_errors, writing

__all__ = ["router"]

router = APIRouter()

REFRESH_SECONDS: Final = 3
"""How often the debugger polls its list when the stream is not available."""
LIMIT: Final = 50
KINDS: Final = ("all", "accepted", "rejected")
STREAM_SECONDS: Final = 15.0
POLL_SECONDS: Final = 1.0
KEEPALIVE_SECONDS: Final = 10.0
MAX_CURSOR: Final = 2**63 - 1  # larger cursors overflow the databases' integer parameters
MAX_SOURCE: Final = 64  # the width of the source id columns


def _sources(request: Request, workspace_id: str) -> dict[str, dict[str, Any]]:
    """The workspace's write keys by source id."""
    with translate_errors("reading the write keys"), runtime(request).engine.connect() as conn:
        keys = access_queries.list_write_keys(conn)
    return {str(k["source_id"]): k for k in keys if k["workspace_id"] == workspace_id}


@dataclass(frozen=True, slots=True)
class Filters:
    """The debugger's query: which source, which kind, and the page (two cursors)."""

    source: str
    kind: str
    before: int | None
    before_rejected: int | None

    @property
    def newest(self) -> bool:
        """The first page, which stays live; older pages stand still."""
        return self.before is None and self.before_rejected is None

    def query(self, **changes: Any) -> str:
        """The query string of these filters with `changes` (None leaves a cursor out)."""
        values: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "before": self.before,
            "before_rejected": self.before_rejected,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _cursor(raw: str) -> int | None:
    """A page cursor from the query string: empty for none, else 1 to `MAX_CURSOR`."""
    if raw == "":
        return None
    if not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) <= MAX_CURSOR:
        raise ValueError(raw)
    return int(raw)


def _filters(
    request: Request, viewer: Viewer, source: str, kind: str, before: str, before_rejected: str
) -> Filters | Response:
    """The debugger's filters, or the 400 page that says which one is wrong."""
    locale = locale_of(request, viewer)
    if kind not in KINDS:
        return refused(request, viewer, 400, text(locale, "data_bad_kind", kind=kind[:40]))
    if len(source) > MAX_SOURCE or "\x00" in source:
        return refused(request, viewer, 400, text(locale, "data_bad_source", limit=MAX_SOURCE))
    cursors: list[int | None] = []
    for name, raw in (("before", before), ("before_rejected", before_rejected)):
        try:
            cursors.append(_cursor(raw))
        except ValueError:
            return refused(request, viewer, 400, text(locale, "data_bad_cursor", name=name))
    return Filters(source, kind, cursors[0], cursors[1])


def _debugger(request: Request, viewer: Viewer, filters: Filters) -> dict[str, Any]:
    """The context of the debugger's list: accepted and rejected events, newest first, as
    the filters choose them, with the links to the older pages of each."""
    workspace = viewer.user.workspace_id
    sources = _sources(request, workspace)
    source = filters.source or None
    events: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    with translate_errors("reading the events"), runtime(request).engine.connect() as conn:
        if filters.kind != "rejected":
            events = recent_events(
                conn, workspace, source_id=source, before_offset=filters.before, limit=LIMIT + 1
            )
        if filters.kind != "accepted":
            rejected = debugger_queries.rejections(
                conn,
                workspace,
                source_id=source,
                before_id=filters.before_rejected,
                limit=LIMIT + 1,
            )
        marker = debugger_queries.debugger_marker(conn, workspace)
    older_events = older_rejected = None
    if len(events) > LIMIT:
        events = events[:LIMIT]
        older_events = "/console/data?" + filters.query(before=events[-1]["offset"])
    if len(rejected) > LIMIT:
        rejected = rejected[:LIMIT]
        older_rejected = "/console/data?" + filters.query(before_rejected=rejected[-1]["id"])
    for e in events:
        message = e["message"] if isinstance(e["message"], dict) else {}
        context = message.get("context")
        e["userId"] = message.get("userId")
        e["anonymousId"] = message.get("anonymousId")
        e["channel"] = message.get("channel") or (
            context.get("channel") if isinstance(context, dict) else None
        )
        e["source_name"] = sources.get(e["sourceId"] or "", {}).get("source_name")
        e["received_ms"] = _ms(e["receivedAt"])
    for r in rejected:
        r["source_name"] = sources.get(r.get("source_id") or "", {}).get("source_name")
    return {
        "events": events,
        "rejected": rejected,
        "sources": sources,
        "source": filters.source,
        "kind": filters.kind,
        "older_events": older_events,
        "older_rejected": older_rejected,
        "newest": filters.newest,
        "newest_url": "/console/data?" + filters.query(before=None, before_rejected=None),
        "marker": marker,
    }


def _ms(iso: str) -> int:
    """Epoch milliseconds of the log's ISO time, for the template's `when`."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@router.get("/data")
def debugger(
    request: Request,
    source: str = "",
    kind: str = "all",
    before: str = "",
    before_rejected: str = "",
) -> Response:
    """The event debugger: what arrived and what was refused, by source and kind; live on
    its newest page."""
    viewer = signed_in(request, "data")
    filters = _filters(request, viewer, source, kind, before, before_rejected)
    if isinstance(filters, Response):
        return filters
    context = _debugger(request, viewer, filters)
    live = filters.query(before=None, before_rejected=None)
    return render(
        request,
        "data/debugger.html",
        viewer,
        refresh_url="/console/data/events?" + live,
        stream_url="/console/data/stream?" + live,
        refresh_seconds=REFRESH_SECONDS,
        kinds=KINDS,
        **context,
    )


@router.get("/data/events")
def debugger_list(
    request: Request,
    source: str = "",
    kind: str = "all",
    before: str = "",
    before_rejected: str = "",
) -> Response:
    """The debugger's list alone, which the page fetches when the stream says it changed."""
    viewer = signed_in(request, "data")
    filters = _filters(request, viewer, source, kind, before, before_rejected)
    if isinstance(filters, Response):
        return filters
    return render(request, "data/events.html", viewer, **_debugger(request, viewer, filters))


def _marker(engine: Engine, workspace_id: str) -> str:
    with translate_errors("reading the events"), engine.connect() as conn:
        return debugger_queries.debugger_marker(conn, workspace_id)


async def marker_changes(
    request: Request, marker: Callable[[], str], seen: str, seconds: float
) -> AsyncIterator[bytes]:
    """The stream's body: `event: changed` (id: the new marker) each time `marker()`
    differs from the last one sent (`seen` at first), keep-alive comments while quiet;
    ends when the client disconnects or after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    quiet_since = loop.time()
    yield b"retry: 2000\n\n"
    while loop.time() < deadline and not await request.is_disconnected():
        now = await asyncio.to_thread(marker)
        if now != seen:
            seen, quiet_since = now, loop.time()
            yield f"id: {now}\nevent: changed\ndata: {now}\n\n".encode()
        elif loop.time() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = loop.time()
            yield b": keep-alive\n\n"
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))


@router.get("/data/stream")
def debugger_stream(
    request: Request,
    since: str = Query("", description="The marker the page was drawn at."),
    seconds: str = Query(str(STREAM_SECONDS), description="Stop after this long (at most 15)."),
) -> Response:
    """Server-sent events: `changed` when an event was accepted or refused in the viewer's
    workspace since `since` (or the browser's `Last-Event-ID`). The page's filters ride
    along in the query string and are not needed here: the page refetches its own list."""
    viewer = signed_in(request, "data")
    try:
        duration = float(seconds)
    except ValueError:
        duration = float("nan")
    if not 0.1 <= duration <= STREAM_SECONDS:
        message = text(locale_of(request, viewer), "data_bad_seconds", high=f"{STREAM_SECONDS:g}")
        return refused(request, viewer, 400, message)
    seen = request.headers.get("last-event-id", since)[:41]
    engine, workspace = runtime(request).engine, viewer.user.workspace_id
    body = marker_changes(request, lambda: _marker(engine, workspace), seen, duration)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={**HEADERS, "X-Accel-Buffering": "no"},
    )


@router.get("/data/events/{offset}")
def event_detail(request: Request, offset: str) -> Response:
    viewer = signed_in(request, "data")
    workspace = viewer.user.workspace_id
    if not offset.isdigit() or len(offset) > 18:
        message = text(locale_of(request, viewer), "data_no_event", offset=offset[:40])
        return refused(request, viewer, 404, message)
    with translate_errors("reading the event"), runtime(request).engine.connect() as conn:
        found = recent_events(conn, workspace, before_offset=int(offset) + 1, limit=1)
    if not found or found[0]["offset"] != int(offset):
        message = text(locale_of(request, viewer), "data_no_event", offset=offset)
        return refused(request, viewer, 404, message)
    event = found[0]
    event["received_ms"] = _ms(event["receivedAt"])
    event["source_name"] = (
        _sources(request, workspace).get(event["sourceId"] or "", {}).get("source_name")
    )
    pretty = orjson.dumps(event["message"], option=orjson.OPT_INDENT_2).decode()
    return render(request, "data/event.html", viewer, event=event, pretty=pretty)


@router.get("/data/rejections/{rejection_id}")
def rejection_detail(request: Request, rejection_id: str) -> Response:
    """One rejected event or request: the reason as the collection API gave it (code,
    field, message), its source and time, and the body as received (indented when it is
    JSON)."""
    viewer = signed_in(request, "data")
    workspace = viewer.user.workspace_id
    missing = text(locale_of(request, viewer), "data_no_rejection", id=rejection_id[:40])
    try:
        wanted = _cursor(rejection_id)
    except ValueError:
        wanted = None
    if wanted is None:
        return refused(request, viewer, 404, missing)
    with translate_errors("reading the rejection"), runtime(request).engine.connect() as conn:
        found = debugger_queries.rejection(conn, workspace, wanted)
    if found is None:
        return refused(request, viewer, 404, missing)
    found["source_name"] = (
        _sources(request, workspace).get(found["source_id"] or "", {}).get("source_name")
    )
    pretty = None
    if found["parsed"] is not None:
        pretty = orjson.dumps(found["parsed"], option=orjson.OPT_INDENT_2).decode()
    return render(request, "data/rejection.html", viewer, rejection=found, pretty=pretty)


def _sources_page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> Response:
    sources = _sources(request, viewer.user.workspace_id)
    return render(
        request, "data/sources.html", viewer, status, sources=list(sources.values()), **context
    )


@router.get("/data/sources")
def sources_page(request: Request) -> Response:
    viewer = signed_in(request, "data.admin")
    return _sources_page(request, viewer, new_key=None, error=None)


@router.post("/data/sources")
def create_source(request: Request, form: Form) -> Response:
    viewer = posted(request, form, "data.admin")
    name = form.get("source_name", "").strip()
    locale = locale_of(request, viewer)
    if not name or len(name) > 64:
        error = text(locale, "data_bad_source_name")
        return _sources_page(request, viewer, 400, new_key=None, error=error)
    with translate_errors("creating the write key"), writing(runtime(request).engine) as conn:
        key = access_actions.create_write_key(conn, viewer.user.workspace_id, name)
    return _sources_page(request, viewer, 201, new_key=key, error=None)


@router.post("/data/sources/{source_id}/revoke")
def revoke_source(request: Request, source_id: str, form: Form) -> Response:
    viewer = posted(request, form, "data.admin")
    found = _sources(request, viewer.user.workspace_id).get(source_id)
    if found is None:
        message = text(locale_of(request, viewer), "data_no_source", source=source_id)
        return refused(request, viewer, 404, message)
    with translate_errors("revoking the write key"), writing(runtime(request).engine) as conn:
        access_actions.revoke_write_key(conn, str(found["write_key"]))
    return redirect("/console/data/sources")


def _users_page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> Response:
    with translate_errors("reading the users"), runtime(request).engine.connect() as conn:
        users = console_queries.list_users(conn, viewer.user.workspace_id)
    return render(request, "data/users.html", viewer, status, users=users, **context)


@router.get("/data/users")
def users_page(request: Request) -> Response:
    viewer = signed_in(request, "data.admin")
    return _users_page(request, viewer, error=None, created=None)


@router.post("/data/users")
def create_user(request: Request, form: Form) -> Response:
    viewer = posted(request, form, "data.admin")
    stores = [s.strip() for s in form.get("stores", "").split(",") if s.strip()]
    try:
        created = console_actions.create_user(
            runtime(request).engine,
            viewer.user.workspace_id,
            form.get("email", ""),
            form.get("role", ""),
            form.get("password", ""),
            stores,
            form.get("locale") or None,
        )
    except PolkuError as exc:
        return _users_page(request, viewer, exc.status, error=str(exc), created=None)
    return _users_page(request, viewer, 201, error=None, created=created.email)


@router.post("/data/users/password")
def set_password(request: Request, form: Form) -> Response:
    viewer = posted(request, form, "data.admin")
    email = form.get("email", "")
    with translate_errors("reading the user"), runtime(request).engine.connect() as conn:
        target = console_queries.get_user(conn, email)
    if target is None or target.workspace_id != viewer.user.workspace_id:
        message = text(locale_of(request, viewer), "data_no_user", email=email)
        return refused(request, viewer, 404, message)
    try:
        console_actions.set_password(runtime(request).engine, email, form.get("password", ""))
    except PolkuError as exc:
        return _users_page(request, viewer, exc.status, error=str(exc), created=None)
    return redirect("/console/data/users")


@router.post("/data/users/{decision}")
def set_active(request: Request, decision: str, form: Form) -> Response:
    """Deactivate a user (their sessions end) or let them sign in again; never oneself."""
    viewer = posted(request, form, "data.admin")
    locale = locale_of(request, viewer)
    if decision not in ("deactivate", "reactivate"):
        return refused(request, viewer, 404, text(locale, "not_found"))
    email = form.get("email", "")
    with translate_errors("reading the user"), runtime(request).engine.connect() as conn:
        target = console_queries.get_user(conn, email)
    if target is None or target.workspace_id != viewer.user.workspace_id:
        return refused(request, viewer, 404, text(locale, "data_no_user", email=email))
    if target.user_id == viewer.user.user_id:
        return refused(request, viewer, 409, text(locale, "data_not_yourself"))
    console_actions.set_active(runtime(request).engine, target.email, decision == "reactivate")
    return redirect("/console/data/users")


CHANNEL_SETTINGS: Final = (
    "smtp_url",
    "smtp_from",
    "sms_gateway_url",
    "sms_gateway_token",
    "sms_sender",
)


def _channel_settings(request: Request) -> list[dict[str, Any]]:
    """The channels' settings as the server read them: secrets only say whether they are set."""
    settings = runtime(request).settings
    rows = []
    for setting in SETTINGS:
        if setting.name not in CHANNEL_SETTINGS:
            continue
        value = getattr(settings, setting.name)
        raw = value.reveal() if isinstance(value, Secret) else str(value)
        rows.append(
            {
                "name": setting.name,
                "env": setting.env,
                "secret": setting.secret,
                "value": "" if setting.secret else raw,
                "set": bool(raw),
                "default": raw == str(setting.default),
                "help": setting.help,
            }
        )
    return rows


DELIVERIES_SHOWN: Final = 5
"""How many of each webhook's newest deliveries the channels page lists."""
MAX_WEBHOOK_URL: Final = 2000  # the width of signal_webhooks.url
MAX_WEBHOOK_QUEUES: Final = 100  # as many as the API takes


def _webhooks(request: Request, workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's webhook endpoints, active first, each with its newest deliveries
    (status, attempts, the last attempt's answer or error)."""
    with translate_errors("reading webhooks"), runtime(request).engine.connect() as conn:
        found = signal_actions.list_webhooks(conn, workspace_id)
        for hook in found:
            hook["deliveries"] = signal_queries.deliveries_of(
                conn, workspace_id, endpoint_id=hook["id"], limit=DELIVERIES_SHOWN
            )
    for hook in found:
        for delivery in hook["deliveries"]:
            last = delivery["log"][-1] if delivery["log"] else None
            delivery["created_ms"] = _ms(delivery["created_at"])
            delivery["last_status"] = last["status_code"] if last else None
            delivery["last_error"] = last["error"] if last else None
    return sorted(found, key=lambda hook: not hook["active"])


def _channels_page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> Response:
    settings = runtime(request).settings
    values: dict[str, Any] = {
        "sent": None,
        "sms_sent": None,
        "error": None,
        "new_webhook": None,
        "webhook_url": "",
        "webhook_queues": "",
        "phone": "",
        **context,
    }
    return render(
        request,
        "data/channels.html",
        viewer,
        status,
        settings=_channel_settings(request),
        sms_ready=bool(settings.sms_gateway_url),
        webhooks=_webhooks(request, viewer.user.workspace_id),
        **values,
    )


@router.get("/data/channels")
def channels_page(request: Request) -> Response:
    viewer = signed_in(request, "data.admin")
    return _channels_page(request, viewer)


@router.post("/data/channels/test-email")
def test_email(request: Request, form: Form) -> Response:
    """Send a short email to the signed-in admin through the configured SMTP server."""
    viewer = posted(request, form, "data.admin")
    locale = locale_of(request, viewer)
    settings = runtime(request).settings
    if not settings.smtp_url.reveal():
        error = text(locale, "data_smtp_not_set")
        return _channels_page(request, viewer, 409, error=error)
    channel = EmailChannel(settings)
    try:
        result = channel.send(
            Message(
                channel="email",
                to=viewer.user.email,
                text=text(locale, "data_test_email_text"),
                subject=text(locale, "data_test_email_subject"),
                idempotency_key="console-test-" + secrets.token_hex(8),
                workspace_id=viewer.user.workspace_id,
                profile_id="",
                purpose="transactional",
                locale=locale,
            )
        )
    finally:
        channel.close()
    if not result.ok:
        error = text(locale, "data_test_email_failed", error=result.error)
        return _channels_page(request, viewer, 502, error=error)
    return _channels_page(request, viewer, sent=viewer.user.email)


@router.post("/data/channels/test-sms")
def test_sms(request: Request, form: Form) -> Response:
    """Send a short text message through the configured SMS gateway to the number typed
    in, normalised to E.164 as identity normalises phones (numbers without a country code
    are read in the default region)."""
    viewer = posted(request, form, "data.admin")
    locale = locale_of(request, viewer)
    rt = runtime(request)
    typed = form.get("phone", "").strip()
    if not rt.settings.sms_gateway_url:
        error = text(locale, "data_sms_not_set")
        return _channels_page(request, viewer, 409, error=error, phone=typed)
    phone = normalise("phone", typed, rt.identity) if len(typed) <= 40 else None
    if phone is None:
        error = text(locale, "data_bad_phone", phone=typed[:40])
        return _channels_page(request, viewer, 400, error=error, phone=typed[:40])
    result = SmsChannel(rt.settings).send(
        Message(
            channel="sms",
            to=phone,
            text=text(locale, "data_test_sms_text"),
            idempotency_key="console-test-sms-" + secrets.token_hex(8),
            workspace_id=viewer.user.workspace_id,
            profile_id="",
            purpose="transactional",
            locale=locale,
        )
    )
    if not result.ok:
        error = text(locale, "data_test_sms_failed", error=result.error)
        return _channels_page(request, viewer, 502, error=error, phone=phone)
    sent = {"phone": phone, "provider_id": result.provider_id}
    return _channels_page(request, viewer, sms_sent=sent)


def _webhook_error(locale: str, exc: PolkuError) -> str:
    """The reason a webhook was refused, in the viewer's language."""
    if exc.code == "invalid_url":
        return text(locale, "data_bad_webhook_url", limit=MAX_WEBHOOK_URL)
    if exc.code == "invalid_queue":
        return text(locale, "data_bad_webhook_queue")
    return explain(locale, exc)


@router.post("/data/channels/webhooks")
def create_webhook(request: Request, form: Form) -> Response:
    """A CRM endpoint for new buying signals (on the queues typed in, every queue when
    none); the page that answers shows its signing secret, once."""
    viewer = posted(request, form, "data.admin")
    url = form.get("url", "").strip()
    typed = form.get("queues", "")
    queues = [q.strip() for q in typed.split(",") if q.strip()]
    try:
        if len(queues) > MAX_WEBHOOK_QUEUES:
            raise InvalidField("Too many queues.", field="queues", code="invalid_queue")
        created = signal_actions.create_webhook(
            runtime(request), viewer.user.workspace_id, url, queues
        )
    except PolkuError as exc:
        if exc.status >= 500:
            raise
        error = _webhook_error(locale_of(request, viewer), exc)
        return _channels_page(
            request,
            viewer,
            400,
            error=error,
            webhook_url=url[:MAX_WEBHOOK_URL],
            webhook_queues=typed[:2000],
        )
    return _channels_page(request, viewer, 201, new_webhook=created)


@router.post("/data/channels/webhooks/{endpoint_id}/delete")
def delete_webhook(request: Request, endpoint_id: str, form: Form) -> Response:
    """Stop sending signals to the endpoint; its delivery log stays listed."""
    viewer = posted(request, form, "data.admin")
    try:
        signal_actions.delete_webhook(runtime(request), viewer.user.workspace_id, endpoint_id)
    except PolkuError as exc:
        if exc.status != 404:
            raise
        message = text(locale_of(request, viewer), "data_no_webhook", id=endpoint_id[:60])
        return refused(request, viewer, 404, message)
    return redirect("/console/data/channels")
