"""`create_app(settings)`: the ASGI application, with every router wired to one `Runtime`.

Nothing happens at import time; the runtime starts in the lifespan and stops with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from polku import __version__
from polku.channels.api import router as channels_router
from polku.collect.api import router as collect_router
from polku.commerce.carts.api import router as carts_router
from polku.commerce.catalog.api import router as catalog_router
from polku.commerce.giftcards.api import router as giftcards_router
from polku.commerce.locations.api import router as locations_router
from polku.commerce.orders.api import router as orders_router
from polku.commerce.returns.api import router as returns_router
from polku.commerce.stock.api import router as stock_router
from polku.console.pages import router as console_router
from polku.console.web import install as install_console
from polku.http import install_error_handlers, json_response
from polku.identity.api import router as identity_router
from polku.journeys.api import router as journeys_router
from polku.ops.api import router as ops_router
from polku.ops.health import Readiness
from polku.ops.middleware import MetricsMiddleware
from polku.profiles.api import router as profiles_router
from polku.recommend.api import router as recommend_router
from polku.runtime import Runtime
from polku.settings import Settings
from polku.signals.api import router as signals_router

__all__ = ["create_app"]

DESCRIPTION = """
Polku collects every customer interaction through a Segment-compatible API and joins them into
one profile per person. Send events with any Segment SDK (write key as the HTTP Basic username);
read profiles with an admin token (`Authorization: Bearer ...`).
"""


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The app for `settings`; pass `runtime` to share one already opened (tests, CLI)."""
    owned = runtime is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.open(settings)
        app.state.runtime = rt
        rt.start()
        try:
            yield
        finally:
            if owned:
                rt.close()

    app = FastAPI(
        title="Polku",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "collect", "description": "Segment-compatible event collection."},
            {
                "name": "profiles",
                "description": "One profile per person: traits, consent, timeline.",
            },
            {"name": "identity", "description": "Identifiers, the merge ledger and un-merge."},
            {
                "name": "catalog",
                "description": "Products and variants (SKUs), and the shop's search box.",
            },
            {
                "name": "locations",
                "description": "Stores and warehouses: opening hours, open now, nearest.",
            },
            {
                "name": "orders",
                "description": "Orders from every channel, preferences, checkout defaults.",
            },
            {"name": "debugger", "description": "What arrived, and what was rejected and why."},
            {"name": "operations", "description": "Liveness, readiness and Prometheus metrics."},
            {
                "name": "stock",
                "description": "Stock per location, availability, click-and-collect reservations.",
            },
            {
                "name": "carts",
                "description": "One cart per customer across devices, priced from the catalogue.",
            },
            {
                "name": "giftcards",
                "description": "Gift cards: issue, balance, partial redemption, expiry, ledger.",
            },
            {
                "name": "returns",
                "description": "Returns and their windows, inspection, refunds, the outlet.",
            },
            {
                "name": "recommendations",
                "description": "What a person should see now, in stock nearby, with reasons.",
            },
            {
                "name": "signals",
                "description": "Buying signals on queues: live feed, claims, outcomes, webhooks.",
            },
            {
                "name": "journeys",
                "description": "Behaviour-triggered journeys: definitions, analytics, the "
                "decision trace.",
            },
        ],
    )
    if runtime is not None:
        app.state.runtime = runtime
    install_error_handlers(app)
    origins = sorted(settings.cors_origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        max_age=86400,
    )
    # Outermost of ours, so CORS preflights are timed too.
    app.add_middleware(MetricsMiddleware)
    app.state.readiness = Readiness()
    # The router tries the routes in order, every route of each included router in turn:
    # the hottest read goes first instead of after ~150 routes (0.25 ms of CPU a request,
    # docs/benchmarks.md). No earlier route matches its paths (a test pins it), so every
    # request is routed as before; it is included again in its place below for the OpenAPI
    # document (that copy is never reached for a request: the first has the same paths).
    app.include_router(recommend_router, include_in_schema=False)
    app.include_router(collect_router)
    app.include_router(profiles_router)
    app.include_router(identity_router)
    app.include_router(catalog_router)
    app.include_router(locations_router)
    app.include_router(ops_router)
    app.include_router(stock_router)
    app.include_router(console_router)
    install_console(app)
    app.include_router(carts_router)
    app.include_router(orders_router)
    app.include_router(giftcards_router)
    app.include_router(returns_router)
    app.include_router(recommend_router)
    app.include_router(signals_router)
    app.include_router(journeys_router)
    app.include_router(channels_router)

    @app.get("/health", tags=["debugger"])
    def health() -> object:
        """Liveness and how far the pipeline is behind the log."""
        rt: Runtime = app.state.runtime
        head = rt.log.head()
        positions = rt.progress.positions()
        return json_response(
            {
                "status": "ok",
                "log_head": head,
                "pipeline_position": min(positions.values(), default=0),
                "positions": positions,
            }
        )

    return app
