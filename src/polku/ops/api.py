"""HTTP routes for operators and orchestrators: liveness, readiness and Prometheus metrics.

`/healthz` answers without touching any backend, so a database outage never gets healthy
processes restarted; `/readyz` says whether to send this process traffic; `/metrics` is
the Prometheus scrape target. (`GET /health`, with the log head and pipeline position, stays
in `polku.app` for the tools that read it.)
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polku.errors import Unavailable
from polku.http import json_response, runtime
from polku.ops.health import Readiness, not_ready
from polku.ops.metrics import CONSUMER_LAG, exposition

__all__ = ["router"]

router = APIRouter(tags=["operations"])


def readiness(request: Request) -> Readiness:
    probe: Readiness = request.app.state.readiness
    return probe


@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the process is up and its event loop answers. Checks no backend."""
    return json_response({"status": "alive"})


@router.get(
    "/readyz",
    responses={503: {"description": "A check failed; the body names it and says why."}},
)
async def readyz(request: Request) -> Response:
    """Readiness: 200 when the state store and the event log both answer within
    POLKU_READINESS_TIMEOUT, else 503 with Retry-After and the failed checks."""
    rt = runtime(request)
    results = await readiness(request).check(rt, rt.settings.readiness_timeout)
    checks = {result.name: result.as_dict() for result in results}
    error = not_ready(results)
    if error is None:
        return json_response({"status": "ready", "checks": checks})
    return json_response(
        {"status": "not_ready", "checks": checks, "error": error.as_dict()},
        error.status,
        {"Retry-After": str(error.retry_after)},
    )


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Every metric in the Prometheus text format (OpenMetrics when the scraper asks).

    The consumers' lag is read from the database's checkpoints at each scrape, so it is
    right also when the pipeline runs in another process (the embedded mode's child
    process, or the production mode's workers)."""
    rt = runtime(request)
    try:
        for (consumer, partition), lag in rt.progress.lags().items():
            CONSUMER_LAG.labels(consumer, str(partition)).set(lag)
    except Unavailable:
        pass  # the database is down: /readyz says so; the other metrics still matter
    body, content_type = exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
