"""HTTP routes of recommendations: one `GET /v1/recommendations` for every context, and the
training controls (start a run in the background, see the models' status).

Every route needs an admin token (the shop's back end, the email builder and the console
ask; a browser asks its shop). Handlers translate: request → `queries` / `serving` → response.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from polku.errors import InvalidField
from polku.http import AdminWorkspace, json_response, runtime
from polku.recommend import queries
from polku.recommend.serving import retrainer
from polku.recommend.tables import models
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["recommendations"])


def _listed(raw: str | None, name: str, limit: int) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if len(values) > limit or any(len(v) > 200 for v in values):
        raise InvalidField(
            f"{name}: at most {limit} comma-separated values of at most 200 characters.",
            field=name,
        )
    return values


@router.get("/v1/recommendations")
def get_recommendations(
    request: Request,
    workspace: AdminWorkspace,
    context: str = Query("home", max_length=40, description=", ".join(queries.CONTEXTS)),
    profile: str | None = Query(None, max_length=64, description="The person, if known."),
    k: int = Query(10, ge=1, le=queries.MAX_K, description="How many items."),
    product: str | None = Query(None, max_length=200, description="The product page's."),
    items: str | None = Query(
        None,
        max_length=5000,
        description="Comma-separated product ids: the cart, or what "
        "was bought (post_purchase); default: the person's own.",
    ),
    q: str | None = Query(None, max_length=200, description="The search query."),
    store: str | None = Query(None, max_length=100, description="The store to stock from."),
    lat: float | None = Query(None, ge=-90, le=90),
    lon: float | None = Query(None, ge=-180, le=180),
    lang: str = Query("en", pattern="^(en|fi)$", description="Language of names and reasons."),
    channel: str = Query("web", max_length=16, description="Where it is shown (consent)."),
    boost: str | None = Query(None, max_length=100, description="margin, outlet"),
) -> Response:
    """What the person should see now in `context` (home, product, cart, post_purchase,
    search, next_best_offer): items in stock online or at their store, each with its reason
    in English and Finnish. An unknown profile or one without consent to personalisation gets
    popular and related items, and `fallback` says why."""
    if (lat is None) != (lon is None):
        raise InvalidField(
            "Send both lat and lon, or neither.", field="lat" if lat is None else "lon"
        )
    ask = queries.Ask(
        context=context,
        k=k,
        profile=profile,
        product=product,
        items=_listed(items, "items", 100),
        q=q,
        store=store,
        near=None if lat is None or lon is None else (lat, lon),
        lang=lang,
        channel=channel,
        boosts=_listed(boost, "boost", 5),
    )
    rt = runtime(request)
    with translate_errors("reading recommendations"), rt.engine.connect() as conn:
        body = queries.recommend(conn, workspace, ask, at=datetime.now(UTC))
    return json_response(body)


@router.post("/v1/recommendations/train", status_code=202)
async def train_now(
    request: Request,
    workspace: AdminWorkspace,
    wait: bool = Query(False, description="Answer when the run has finished."),
) -> Response:
    """Retrain the workspace's models now, in the background; serving keeps answering from
    the current models and switches within seconds of the new ones being stored."""
    trainer = retrainer(runtime(request).engine, workspace)
    if wait:
        report = await run_in_threadpool(trainer.run_once)
        if report is None:
            return json_response({"status": "failed", "error": trainer.error}, 503)
        return json_response(
            {
                "status": "trained",
                "version": report.version,
                "interactions": report.interactions,
                "people": report.people,
                "items": report.items,
                "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
            }
        )
    started = trainer.request()
    return json_response({"status": "started" if started else "already_running"}, 202)


@router.get("/v1/recommendations/status")
def training_status(request: Request, workspace: AdminWorkspace) -> Response:
    """The stored models: version, when trained, on how much; and whether a run is going."""
    rt = runtime(request)
    with translate_errors("reading the models"), rt.engine.connect() as conn:
        row = conn.execute(
            select(models.c.version, models.c.trained_at, models.c.summary).where(
                models.c.workspace_id == workspace
            )
        ).first()
    trainer = retrainer(rt.engine, workspace)
    return json_response(
        {
            "version": None if row is None else int(row.version),
            "trained_at": None if row is None else int(row.trained_at),
            "age_seconds": None if row is None else round(time.time() - row.trained_at / 1000),
            "summary": None if row is None else orjson.loads(row.summary),
            "training": trainer.running,
            "last_error": trainer.error,
        }
    )
