"""HTTP routes of routed signals: queues, the live feed, claims and outcomes, routing rules,
conversion, suppression, and CRM webhooks with their delivery log.

Every route needs an admin token (the console and the retailer's back ends call these).
Handlers translate: request → `actions` or `queries` → response.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictStr

from polku.collect.live import live_stream
from polku.errors import NotFound
from polku.http import AdminWorkspace, json_response, runtime
from polku.profiles.queries import parse_time, resolve
from polku.signals import actions, queries
from polku.signals.live import SignalFeed
from polku.signals.routing import config_body, config_of
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["signals"])

_STATUS = "^(open|claimed|acknowledged|closed)$"
_MAX_ID = 2**63 - 1
SignalId = Annotated[int, Path(ge=1, le=_MAX_ID, description="The signal's id.")]


class StaffIn(BaseModel):
    staff_id: StrictStr = Field(min_length=1, max_length=100)


class OptionalStaffIn(BaseModel):
    staff_id: StrictStr | None = Field(None, min_length=1, max_length=100)


class OutcomeIn(BaseModel):
    outcome: StrictStr = Field(description="contacted, reserved, sold or not_interested.")
    staff_id: StrictStr | None = Field(None, min_length=1, max_length=100)
    note: StrictStr | None = Field(None, max_length=1000)


class PickupIn(BaseModel):
    sku: StrictStr = Field(min_length=1, max_length=200, description="The size to hold.")
    store: StrictStr | None = Field(
        None, max_length=100, description="The signal's store (default: the one it names)."
    )
    staff_id: StrictStr | None = Field(None, min_length=1, max_length=100)


class WebhookIn(BaseModel):
    url: StrictStr = Field(max_length=2000)
    queues: list[StrictStr] = Field(default_factory=list, max_length=100)
    secret: StrictStr | None = Field(None, description="16+ characters; generated if left out.")


def _time(raw: str | None, name: str) -> int | None:
    return None if raw is None else parse_time(raw, name)


def _feed(request: Request) -> SignalFeed:
    state = request.app.state
    feed: SignalFeed | None = getattr(state, "signal_feed", None)
    if feed is None:
        feed = state.signal_feed = SignalFeed(runtime(request).engine)
    return feed


# -- queues ----------------------------------------------------------------------------------


@router.get("/v1/signals")
def list_signals(
    request: Request,
    workspace: AdminWorkspace,
    queue: str | None = Query(None, max_length=120, description="agents, automation, store:<id>"),
    status: str | None = Query(None, pattern=_STATUS),
    kind: str | None = Query(None, max_length=100),
    store: str | None = Query(None, max_length=100, description="The store it was routed to."),
    since: str | None = Query(None, description="Event time from (ISO-8601 or epoch ms)."),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """Signals, newest first: a queue's list for the console (404 `unknown_queue`)."""
    start = _time(since, "since")
    rt = runtime(request)
    with translate_errors("reading signals"), rt.engine.connect() as conn:
        if queue is not None:
            queries.check_known_queue(conn, workspace, queue)
        found = queries.list_signals(
            conn,
            workspace,
            queue=queue,
            status=status,
            kind=kind,
            store=store,
            since=start,
            limit=limit,
        )
    return json_response({"signals": [s.as_dict() for s in found]})


@router.get(
    "/v1/signals/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live_signals(
    request: Request,
    workspace: AdminWorkspace,
    queue: str = Query(max_length=120, description="agents, automation or store:<location_id>"),
    limit: int | None = Query(None, ge=1, le=1_000_000, description="Stop after this many."),
    seconds: float | None = Query(None, gt=0, le=86_400, description="Stop after this long."),
) -> StreamingResponse:
    """Server-sent events: `event: ready` once watching, then `event: signal` (the signal
    as JSON) for every signal routed to `queue` from then on, from any process."""
    rt = runtime(request)
    with translate_errors("reading signals"), rt.engine.connect() as conn:
        queries.check_known_queue(conn, workspace, queue)
    feed = _feed(request).watch(workspace, queue)
    return StreamingResponse(
        live_stream(feed, limit=limit, seconds=seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# -- routing rules, conversion ---------------------------------------------------------------


@router.get("/v1/signals/routing")
def get_routing(request: Request, workspace: AdminWorkspace) -> Response:
    """The workspace's routing config (the built-in default until one is saved)."""
    rt = runtime(request)
    with translate_errors("reading the routing rules"), rt.engine.connect() as conn:
        config = config_of(conn, workspace)
    return json_response({**config_body(config), "default": config.defaults})


@router.put("/v1/signals/routing")
def put_routing(request: Request, workspace: AdminWorkspace, body: dict[str, Any]) -> Response:
    """Replace the routing config (format: docs/signals.md); 400 naming the field."""
    config = actions.set_routing(runtime(request), workspace, body)
    return json_response({**config_body(config), "default": False})


@router.get("/v1/signals/conversions")
def get_conversions(
    request: Request,
    workspace: AdminWorkspace,
    days: int | None = Query(None, ge=1, le=365, description="Default: the routing config's."),
    since: str | None = Query(None, description="Signals from (ISO-8601 or epoch ms)."),
    until: str | None = Query(None, description="Signals before (ISO-8601 or epoch ms)."),
) -> Response:
    """Signals, conversions (an order in any channel within `days`) and the rate, overall,
    per queue, per routing rule and per kind."""
    start, end = _time(since, "since"), _time(until, "until")
    rt = runtime(request)
    with translate_errors("reading conversions"), rt.engine.connect() as conn:
        body = queries.conversions(conn, workspace, days=days, since=start, until=end)
    return json_response(body)


# -- webhooks --------------------------------------------------------------------------------


@router.get("/v1/signals/webhooks")
def get_webhooks(request: Request, workspace: AdminWorkspace) -> Response:
    rt = runtime(request)
    with translate_errors("reading webhooks"), rt.engine.connect() as conn:
        found = actions.list_webhooks(conn, workspace)
    return json_response({"webhooks": found})


@router.post("/v1/signals/webhooks", status_code=201)
def post_webhook(request: Request, workspace: AdminWorkspace, body: WebhookIn) -> Response:
    """A CRM endpoint for new signals on `queues` (all when empty); the answer holds the
    signing secret, shown only here."""
    created = actions.create_webhook(
        runtime(request), workspace, body.url, list(body.queues), body.secret
    )
    return json_response(created, 201)


@router.delete("/v1/signals/webhooks/{endpoint_id}", status_code=204)
def delete_webhook(request: Request, workspace: AdminWorkspace, endpoint_id: str) -> Response:
    actions.delete_webhook(runtime(request), workspace, endpoint_id)
    return Response(status_code=204)


@router.get("/v1/signals/deliveries")
def get_deliveries(
    request: Request,
    workspace: AdminWorkspace,
    endpoint_id: str | None = Query(None, max_length=40),
    signal_id: int | None = Query(None, ge=1, le=_MAX_ID),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """The webhook delivery log, newest first, each delivery with its attempts."""
    rt = runtime(request)
    with translate_errors("reading webhook deliveries"), rt.engine.connect() as conn:
        found = queries.deliveries_of(
            conn, workspace, endpoint_id=endpoint_id, signal_id=signal_id, limit=limit
        )
    return json_response({"deliveries": found})


# -- one signal ------------------------------------------------------------------------------


@router.get("/v1/signals/{signal_id}")
def get_signal(request: Request, workspace: AdminWorkspace, signal_id: SignalId) -> Response:
    rt = runtime(request)
    with translate_errors("reading signals"), rt.engine.connect() as conn:
        found = queries.require_signal(conn, workspace, signal_id)
    return json_response(found.as_dict())


@router.post("/v1/signals/{signal_id}/claim")
def post_claim(
    request: Request, workspace: AdminWorkspace, signal_id: SignalId, body: StaffIn
) -> Response:
    """Take the signal; 409 `already_claimed` naming who holds it."""
    found = actions.claim(runtime(request), workspace, signal_id, body.staff_id)
    return json_response(found.as_dict())


@router.post("/v1/signals/{signal_id}/acknowledge")
def post_acknowledge(
    request: Request,
    workspace: AdminWorkspace,
    signal_id: SignalId,
    body: OptionalStaffIn | None = None,
) -> Response:
    found = actions.acknowledge(
        runtime(request), workspace, signal_id, body.staff_id if body else None
    )
    return json_response(found.as_dict())


@router.post("/v1/signals/{signal_id}/outcome")
def post_outcome(
    request: Request, workspace: AdminWorkspace, signal_id: SignalId, body: OutcomeIn
) -> Response:
    """Record what came of it: contacted, reserved, sold or not_interested."""
    found = actions.record_outcome(
        runtime(request), workspace, signal_id, body.outcome, body.staff_id, body.note
    )
    return json_response(found.as_dict())


@router.post("/v1/signals/{signal_id}/reserve", status_code=201)
def post_reserve(
    request: Request, workspace: AdminWorkspace, signal_id: SignalId, body: PickupIn
) -> Response:
    """Hold one unit of `sku` at the signal's store for its customer to collect (a click and
    collect reservation, as `POST /v1/reservations` makes) and record the outcome
    `reserved`; 409 when the store has none to hold."""
    rt = runtime(request)
    signal, reservation = actions.reserve_for_pickup(
        rt, rt.identity, workspace, signal_id, body.sku, body.store, body.staff_id
    )
    return json_response(
        {"signal": signal.as_dict(), "reservation": reservation.as_dict()}, status=201
    )


@router.post("/v1/signals/{signal_id}/close")
def post_close(
    request: Request,
    workspace: AdminWorkspace,
    signal_id: SignalId,
    body: OptionalStaffIn | None = None,
) -> Response:
    found = actions.close(runtime(request), workspace, signal_id, body.staff_id if body else None)
    return json_response(found.as_dict())


# -- suppression -----------------------------------------------------------------------------


@router.get("/v1/profiles/{profile_id}/suppression", tags=["profiles"])
def get_suppression(
    request: Request,
    workspace: AdminWorkspace,
    profile_id: str,
    at: str | None = Query(None, description="The instant (ISO-8601 or epoch ms); now."),
) -> Response:
    """Whether journeys should leave the person alone now: a staff member holds a claim on
    one of their signals, or released it less than the hold time ago."""
    rt = runtime(request)
    moment = _time(at, "at")
    with translate_errors("reading suppression"), rt.engine.connect() as conn:
        if len(profile_id) > 64 or resolve(conn, workspace, profile_id) is None:
            raise NotFound(
                f"Unknown profile {profile_id[:64]!r}.",
                field="profile_id",
                code="unknown_profile",
                hint="Use a profile id from GET /v1/profiles/...",
            )
        if moment is None:
            moment = int(time.time() * 1000)
        found = queries.is_suppressed(conn, workspace, profile_id, moment)
    if found is None:
        return json_response({"suppressed": False, "profile_id": profile_id})
    return json_response(found.as_dict())
