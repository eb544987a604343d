"""The demo store's shoppers get recommendations out of the box: before any training (live
pairs and counts, a first training started in the background) and after it (personal)."""

from __future__ import annotations

from conftest import Polku
from polku.demo.store import seed_demo_store

WS = "default"  # the workspace the fixture's admin token reads


def test_demo_shoppers_get_recommendations_before_and_after_training(polku: Polku) -> None:
    report = seed_demo_store(polku.runtime, WS)
    polku.settle()
    assert report.profiles

    def ask(profile: str, **params: str) -> dict[str, object]:
        response = polku.client.get(
            "/v1/recommendations", params={"profile": profile, **params}, headers=polku.admin
        )
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    for profile in report.profiles.values():
        body = ask(profile, context="home", k="5")
        assert body["items"], body  # popular in stock, before any model exists
    trained = polku.client.post("/v1/recommendations/train?wait=true", headers=polku.admin)
    assert trained.status_code == 200 and trained.json()["status"] == "trained", trained.text
    for profile in report.profiles.values():
        body = ask(profile, context="home", k="5", lang="fi")
        items = body["items"]
        assert isinstance(items, list) and items, body
        assert body["model_version"] is not None
        assert all(item["reason"]["fi"] for item in items)
