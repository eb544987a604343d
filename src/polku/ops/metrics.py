"""Every Prometheus metric Polku exports, defined once, and the ways to expose them.

The metrics live in prometheus_client's default registry (`prometheus_client.REGISTRY`).
Why the default and not a registry of our own passed around: it already carries the
library's process, platform and garbage-collector collectors (CPU, memory, open files), a
Polku process is one service with one scrape target, and every part (collect, log,
pipeline, worker) can then record with a plain module-level object instead of threading a
registry through constructors. The price is that the registry is process-wide: tests that
build several apps in one process see shared counters and assert on differences.

Names follow Prometheus conventions: `polku_` prefix, base units (seconds), `_total` on
counters. Labels take values from small, fixed sets (route templates, error codes,
consumer names, workspaces), never from request data, so the number of series stays small.
Hot paths record once per request or per batch, never once per event.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import choose_encoder

__all__ = [
    "CONSUMER_BATCH_SECONDS",
    "CONSUMER_ERRORS",
    "CONSUMER_EVENTS",
    "CONSUMER_LAG",
    "EVENTS_ACCEPTED",
    "EVENTS_REJECTED",
    "HTTP_REQUEST_SECONDS",
    "LOG_APPEND_SECONDS",
    "PIPELINE_POSITION",
    "exposition",
    "serve_metrics",
]

# Latency buckets from half a millisecond (a group commit on a fast disk) to ten seconds.
_FAST_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# -- collection --------------------------------------------------------------------------

EVENTS_ACCEPTED = Counter(
    "polku_events_accepted",
    "Events accepted by the collection API and durable in the log, by workspace.",
    ["workspace"],
)
"""Incremented by the number of accepted events once per request, after the append."""

EVENTS_REJECTED = Counter(
    "polku_events_rejected",
    "Events and requests rejected by the collection API, by error code "
    "(each one is also kept as a dead letter).",
    ["code"],
)
"""Incremented once per request and code; a refused request (bad JSON, no key) counts one."""

# -- HTTP ----------------------------------------------------------------------------------

HTTP_REQUEST_SECONDS = Histogram(
    "polku_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status class.",
    ["route", "method", "status"],
    buckets=_FAST_BUCKETS,
)
"""Observed by `polku.ops.middleware.MetricsMiddleware`; `route` is the path template."""

# -- log -----------------------------------------------------------------------------------

LOG_APPEND_SECONDS = Histogram(
    "polku_log_append_duration_seconds",
    "Time for a request's events to become durable in the log, waiting for the group "
    "commit included.",
    buckets=_FAST_BUCKETS,
)
"""Observed once per append call (one collection request), not per event."""

# -- pipeline (recorded by the pipeline runner and `polku worker`) -------------------------

CONSUMER_LAG = Gauge(
    "polku_consumer_lag_events",
    "Events in the log that a consumer has not processed yet, by consumer and partition.",
    ["consumer", "partition"],
)
"""Log head minus the consumer's checkpoint; embedded mode has the one partition "0"."""

CONSUMER_BATCH_SECONDS = Histogram(
    "polku_consumer_batch_duration_seconds",
    "Time a consumer takes to process one batch of events (prepare and apply), by consumer.",
    ["consumer"],
    buckets=_FAST_BUCKETS,
)
"""Observed once per batch; with `polku_consumer_events_total` it gives events per second."""

CONSUMER_EVENTS = Counter(
    "polku_consumer_events",
    "Events processed by a consumer, by consumer.",
    ["consumer"],
)
"""Incremented by the batch size when a batch's checkpoint commits."""

CONSUMER_ERRORS = Counter(
    "polku_consumer_errors",
    "Errors while consuming the log, by consumer and kind (poison: the event became a "
    "dead letter; unavailable: a backend was down and the batch is retried; unexpected).",
    ["consumer", "kind"],
)
"""Incremented once per failed batch or poison event."""

PIPELINE_POSITION = Gauge(
    "polku_pipeline_position",
    "Log offset up to which every consumer of this process has processed the events.",
)
"""Set after each batch; compare with the log head (`GET /health`) to see the backlog."""


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The current value of every metric and its content type, in the format `accept` asks
    for (the Prometheus text format, or OpenMetrics when the scraper prefers it)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


def serve_metrics(host: str, port: int) -> WSGIServer:
    """Serve `/metrics` from a process without an HTTP API (`polku worker`) on `host:port`.

    A daemon thread answers the scrapes; the returned server's `shutdown()` stops it, and
    its `server_address` says the port when `port` was 0.
    """
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server
