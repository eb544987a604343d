"""The console's data pages: the live event debugger (what arrived, from which source, what
was rejected and why, one event's JSON), the write keys and sources, the channels' settings
(read-only: they come from the server's `POLKU_*` environment; a test email to oneself) and
the users.

The debugger's list is a fragment (`/console/data/events`) that `static/data.js` fetches
again every `REFRESH_SECONDS`, so new and rejected events appear without a reload. Write
keys are shown in full only once, on the page that answers their creation."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from polku.access import actions as access_actions
from polku.access import queries as access_queries
from polku.channels.base import Message
from polku.channels.email import EmailChannel
from polku.collect.deadletters import list_rejections
from polku.collect.queries import recent_events
from polku.console import actions as console_actions
from polku.console import queries as console_queries
from polku.console.i18n import text
from polku.console.web import (
    Form,
    Viewer,
    locale_of,
    posted,
    redirect,
    refused,
    render,
    signed_in,
)
from polku.errors import PolkuError
from polku.http import runtime
from polku.settings import SETTINGS, Secret
from polku.storage.engine import translate_errors, writing

__all__ = ["router"]

router = APIRouter()

REFRESH_SECONDS: Final = 3
LIMIT: Final = 50
KINDS: Final = ("all", "accepted", "rejected")


def _sources(request: Request, workspace_id: str) -> dict[str, dict[str, Any]]:
    """The workspace's write keys by source id."""
    with translate_errors("reading the write keys"), runtime(request).engine.connect() as conn:
        keys = access_queries.list_write_keys(conn)
    return {str(k["source_id"]): k for k in keys if k["workspace_id"] == workspace_id}


def _debugger(request: Request, viewer: Viewer, source: str, kind: str) -> dict[str, Any]:
    """The context of the debugger's list: accepted and rejected events, newest first."""
    workspace = viewer.user.workspace_id
    sources = _sources(request, workspace)
    with translate_errors("reading the events"), runtime(request).engine.connect() as conn:
        events = recent_events(conn, workspace, limit=LIMIT) if kind != "rejected" else []
        rejected = (
            list_rejections(conn, workspace, limit=LIMIT, include_unknown_keys=False)
            if kind != "accepted"
            else []
        )
    if source:
        events = [e for e in events if e["sourceId"] == source]
        rejected = [r for r in rejected if r.get("source_id") == source]
    for e in events:
        message = e["message"] if isinstance(e["message"], dict) else {}
        e["userId"] = message.get("userId")
        e["anonymousId"] = message.get("anonymousId")
        e["channel"] = message.get("channel") or (message.get("context") or {}).get("channel")
        e["source_name"] = sources.get(e["sourceId"] or "", {}).get("source_name")
        e["received_ms"] = _ms(e["receivedAt"])
    for r in rejected:
        r["source_name"] = sources.get(r.get("source_id") or "", {}).get("source_name")
    return {
        "events": events,
        "rejected": rejected,
        "sources": sources,
        "source": source,
        "kind": kind,
    }


def _ms(iso: str) -> int:
    """Epoch milliseconds of the log's ISO time, for the template's `when`."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _kind(kind: str) -> str:
    return kind if kind in KINDS else "all"


@router.get("/data")
def debugger(request: Request, source: str = "", kind: str = "all") -> Response:
    viewer = signed_in(request, "data")
    if isinstance(viewer, Response):
        return viewer
    context = _debugger(request, viewer, source, _kind(kind))
    refresh = "/console/data/events?" + urlencode({"source": source, "kind": _kind(kind)})
    return render(
        request,
        "data/debugger.html",
        viewer,
        refresh_url=refresh,
        refresh_seconds=REFRESH_SECONDS,
        kinds=KINDS,
        **context,
    )


@router.get("/data/events")
def debugger_list(request: Request, source: str = "", kind: str = "all") -> Response:
    viewer = signed_in(request, "data")
    if isinstance(viewer, Response):
        return viewer
    context = _debugger(request, viewer, source, _kind(kind))
    return render(request, "data/events.html", viewer, **context)


@router.get("/data/events/{offset}")
def event_detail(request: Request, offset: str) -> Response:
    viewer = signed_in(request, "data")
    if isinstance(viewer, Response):
        return viewer
    workspace = viewer.user.workspace_id
    if not offset.isdigit() or len(offset) > 18:
        message = text(locale_of(request, viewer), "data_no_event", offset=offset[:40])
        return refused(request, viewer, 404, message)
    with translate_errors("reading the event"), runtime(request).engine.connect() as conn:
        found = recent_events(conn, workspace, limit=1, before_offset=int(offset) + 1)
    if not found or found[0]["offset"] != int(offset):
        message = text(locale_of(request, viewer), "data_no_event", offset=offset)
        return refused(request, viewer, 404, message)
    event = found[0]
    event["received_ms"] = _ms(event["receivedAt"])
    pretty = orjson.dumps(event["message"], option=orjson.OPT_INDENT_2).decode()
    return render(request, "data/event.html", viewer, event=event, pretty=pretty)


def _sources_page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> Response:
    sources = _sources(request, viewer.user.workspace_id)
    return render(
        request, "data/sources.html", viewer, status, sources=list(sources.values()), **context
    )


@router.get("/data/sources")
def sources_page(request: Request) -> Response:
    viewer = signed_in(request, "data.admin")
    if isinstance(viewer, Response):
        return viewer
    return _sources_page(request, viewer, new_key=None, error=None)


@router.post("/data/sources")
def create_source(request: Request, form: Form) -> Response:
    viewer = posted(request, form, "data.admin")
    if isinstance(viewer, Response):
        return viewer
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
    if isinstance(viewer, Response):
        return viewer
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
    if isinstance(viewer, Response):
        return viewer
    return _users_page(request, viewer, error=None, created=None)


@router.post("/data/users")
def create_user(request: Request, form: Form) -> Response:
    viewer = posted(request, form, "data.admin")
    if isinstance(viewer, Response):
        return viewer
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
    if isinstance(viewer, Response):
        return viewer
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
    if isinstance(viewer, Response):
        return viewer
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


def _channels_page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> Response:
    return render(
        request,
        "data/channels.html",
        viewer,
        status,
        settings=_channel_settings(request),
        **context,
    )


@router.get("/data/channels")
def channels_page(request: Request) -> Response:
    viewer = signed_in(request, "data.admin")
    if isinstance(viewer, Response):
        return viewer
    return _channels_page(request, viewer, sent=None, error=None)


@router.post("/data/channels/test-email")
def test_email(request: Request, form: Form) -> Response:
    """Send a short email to the signed-in admin through the configured SMTP server."""
    viewer = posted(request, form, "data.admin")
    if isinstance(viewer, Response):
        return viewer
    locale = locale_of(request, viewer)
    settings = runtime(request).settings
    if not settings.smtp_url.reveal():
        error = text(locale, "data_smtp_not_set")
        return _channels_page(request, viewer, 409, sent=None, error=error)
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
        return _channels_page(request, viewer, 502, sent=None, error=error)
    return _channels_page(request, viewer, sent=viewer.user.email, error=None)
