"""The app tries `GET /v1/recommendations` first (it is the hottest read): no other route
may claim its paths, so that every request is routed as it would be in the documented order,
and the OpenAPI document keeps that order."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Match

from polku.app import create_app
from polku.settings import Settings

PATHS = ("/v1/recommendations", "/v1/recommendations/train", "/v1/recommendations/status")


def _app(tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings.build(data_dir=str(tmp_path), pipeline="off")))


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_only_the_recommendations_router_claims_its_paths(tmp_path: Path, method: str) -> None:
    app = _app(tmp_path).app
    routes = app.router.routes  # type: ignore[attr-defined]
    for path in PATHS:
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        claiming = [
            n for n, route in enumerate(routes) if route.matches(dict(scope))[0] != Match.NONE
        ]
        # The copy tried first and the one in its documented place, nothing else.
        assert len(claiming) == 2, (path, claiming)
        assert claiming[0] == next(
            n for n, route in enumerate(routes) if getattr(route, "path", None) is None
        ), "the recommendations router is the first router tried"


def test_the_openapi_document_lists_recommendations_once_in_their_place(tmp_path: Path) -> None:
    paths = list(_app(tmp_path).get("/openapi.json").json()["paths"])
    assert paths.count("/v1/recommendations") == 1
    before = paths.index("/v1/returns/policy")
    after = paths.index("/v1/signals")
    assert before < paths.index("/v1/recommendations") < after


def test_requests_reach_the_same_answers(tmp_path: Path) -> None:
    """What the app answered before the router was tried first (the same checks, the same
    redirects and 405s with their Allow headers)."""
    with _app(tmp_path) as client:
        missing = client.get("/v1/recommendations")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        slash = client.get("/v1/recommendations/", follow_redirects=False)
        assert slash.status_code == 307
        assert slash.headers["location"] == "http://testserver/v1/recommendations"
        for method, path, allow in [
            ("PUT", "/v1/recommendations", "GET"),
            ("POST", "/v1/recommendations/status", "GET"),
            ("GET", "/v1/recommendations/train", "POST"),
        ]:
            wrong = client.request(method, path)
            assert wrong.status_code == 405 and wrong.headers["allow"] == allow
            assert wrong.json()["error"]["code"] == "method_not_allowed"
        assert client.get("/healthz").json() == {"status": "alive"}
