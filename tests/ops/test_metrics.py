"""Prometheus metrics through `GET /metrics` (and the worker's own port), read with the
official parser. The registry is process-wide, so every test compares before and after."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from polku.ops.metrics import serve_metrics

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from conftest import Polku  # the `polku` fixture of tests/conftest.py

METRICS = {
    "polku_events_accepted": "counter",
    "polku_events_rejected": "counter",
    "polku_http_request_duration_seconds": "histogram",
    "polku_log_append_duration_seconds": "histogram",
    "polku_consumer_lag_events": "gauge",
    "polku_consumer_batch_duration_seconds": "histogram",
    "polku_consumer_events": "counter",
    "polku_consumer_errors": "counter",
    "polku_pipeline_position": "gauge",
}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Scrape:
    """One scrape of /metrics; `value` is 0 for a series not created yet."""

    def __init__(self, client: TestClient) -> None:
        response = client.get("/metrics")
        assert response.status_code == 200
        self.samples = _samples(response.text)

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def _track(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": "u-metrics",
        "messageId": str(uuid.uuid4()),
        **fields,
    }


def test_every_metric_is_exported_with_help_and_type(polku: Polku) -> None:
    response = polku.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name, kind in METRICS.items():
        assert name in families, f"{name} is not exported"
        assert families[name].type == kind
        assert families[name].documentation
    # The library's process collector comes with the default registry.
    assert "process_cpu_seconds" in families


def test_accepted_events_count_up_by_workspace_after_a_batch(polku: Polku) -> None:
    before = Scrape(polku.client)
    response = polku.send("/v1/batch", {"batch": [_track(), _track(), _track()]})
    assert response.status_code == 200, response.text
    after = Scrape(polku.client)

    accepted = "polku_events_accepted_total"
    assert (
        after.value(accepted, workspace="default") - before.value(accepted, workspace="default")
        == 3
    )
    appends = "polku_log_append_duration_seconds_count"
    assert after.value(appends) - before.value(appends) == 1  # once per request, not per event


def test_rejections_count_by_code(polku: Polku) -> None:
    before = Scrape(polku.client)
    mixed = polku.send("/v1/batch", {"batch": [_track(), _track(userId=None), _track(userId=None)]})
    assert mixed.status_code == 200, mixed.text
    assert [r["code"] for r in mixed.json()["rejected"]] == ["missing_identity"] * 2
    broken = polku.client.post(
        "/v1/track", content=b"{not json", auth=polku.auth, headers={"content-type": "text/plain"}
    )
    assert broken.status_code == 400
    after = Scrape(polku.client)

    rejected = "polku_events_rejected_total"
    for code, count in (("missing_identity", 2), ("invalid_json", 1)):
        assert after.value(rejected, code=code) - before.value(rejected, code=code) == count
    accepted = "polku_events_accepted_total"
    assert (
        after.value(accepted, workspace="default") - before.value(accepted, workspace="default")
        == 1
    )


def test_http_requests_are_timed_by_route_template_method_and_status(polku: Polku) -> None:
    name = "polku_http_request_duration_seconds_count"
    settings_route = {"route": "/v1/projects/{write_key}/settings", "method": "GET"}
    before = Scrape(polku.client)
    assert polku.client.get(f"/v1/projects/{polku.write_key}/settings").status_code == 200
    assert polku.client.get("/v1/projects/no-such-key/settings").status_code == 404
    assert polku.client.get(f"/nothing/here/{uuid.uuid4()}").status_code == 404
    assert polku.client.request("BREW", "/v1/batch").status_code == 405
    after = Scrape(polku.client)

    def delta(**labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(**settings_route, status="2xx") == 1
    assert delta(**settings_route, status="4xx") == 1
    # Unknown paths and methods share one series each: clients cannot create new ones.
    assert delta(route="unmatched", method="GET", status="4xx") == 1
    assert delta(route="/v1/batch", method="other", status="4xx") == 1
    # The scrape before this one was itself timed.
    assert delta(route="/metrics", method="GET", status="2xx") == 1


def test_openmetrics_when_the_scraper_asks_for_it(polku: Polku) -> None:
    response = polku.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_serve_metrics_answers_scrapes_on_its_own_port() -> None:
    server = serve_metrics("127.0.0.1", 0)
    try:
        port = server.server_address[1]
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
        assert families["polku_consumer_lag_events"] == "gauge"
        assert families["polku_pipeline_position"] == "gauge"
    finally:
        server.shutdown()
        server.server_close()


def test_consumer_lag_comes_from_the_checkpoints_whichever_process_runs_the_pipeline(
    polku: Polku,
) -> None:
    polku.settle()
    pipeline = polku.runtime.pipeline
    assert pipeline is not None
    pipeline.stop()  # as if the pipeline ran elsewhere and had fallen behind
    response = polku.send("/v1/batch", {"batch": [_track() for _ in range(3)]})
    assert response.status_code == 200
    scrape = Scrape(polku.client)
    for consumer in ("identity", "profiles"):
        assert scrape.value("polku_consumer_lag_events", consumer=consumer, partition="0") == 3
    pipeline.start()
    polku.settle()
    scrape = Scrape(polku.client)
    assert scrape.value("polku_consumer_lag_events", consumer="profiles", partition="0") == 0
