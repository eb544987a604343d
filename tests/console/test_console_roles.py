"""What each role may use, checked on the server: the home page's links, the pages allowed
and the 403 page for the rest, a store clerk who cannot see another store's queue (not by
crafting the URL either, nor by posting to its signals), and nothing without a session."""

from __future__ import annotations

import pytest
from console_world import (
    MONDAY_NOON,
    SUNDAY_0300,
    csrf_of,
    routed,
    shown,
    signal,
    signed_in,
    store,
    user,
)
from fastapi.testclient import TestClient

from conftest import Polku

PAGES = ("/console/signals", "/console/signals/list", "/console/journeys")
ALLOWED = {
    "admin": {"/console/signals", "/console/signals/list", "/console/journeys"},
    "marketer": {"/console/journeys"},
    "agent": {"/console/signals", "/console/signals/list"},
    "store_staff": {"/console/signals", "/console/signals/list"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_gets_its_pages_and_a_403_page_for_the_others(polku: Polku, role: str) -> None:
    store(polku, "hki-kamppi")
    stores = ("hki-kamppi",) if role == "store_staff" else ()
    client = signed_in(polku, user(polku, f"{role}@example.com", role, *stores))
    home = client.get("/console/")
    assert home.status_code == 200 and f"{role}@example.com" in home.text
    for page in PAGES:
        response = client.get(page)
        if page in ALLOWED[role]:
            assert response.status_code == 200, (page, response.text)
        else:
            assert response.status_code == 403, (page, response.text)
            assert "may not use this page" in response.text
            assert response.headers["content-type"].startswith("text/html")
        # The home page links exactly to the pages the role may open.
        if page != "/console/signals/list":
            assert (f'href="{page}"' in home.text) == (page in ALLOWED[role])


def test_a_store_clerk_sees_only_their_stores_queues(polku: Polku) -> None:
    for location in ("hki-kamppi", "tre-ratina", "tku-hansa"):
        store(polku, location)
    mine, other = routed(polku, "hki-kamppi"), routed(polku, "tre-ratina")
    online = routed(polku, None, at=SUNDAY_0300)
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))

    page = clerk.get("/console/signals")  # the first of their stores by default
    assert page.status_code == 200
    assert f'data-signal="{mine}"' in page.text
    assert f'data-signal="{other}"' not in page.text and f'data-signal="{online}"' not in page.text

    for queue in ("store:tre-ratina", "store:tku-hansa", "agents", "automation", "store:nowhere"):
        for path in ("/console/signals", "/console/signals/list"):
            crafted = clerk.get(path, params={"queue": queue})
            assert crafted.status_code == 403, (path, queue)
            assert f'data-signal="{other}"' not in crafted.text
            assert "belongs to another store or team" in crafted.text

    # Posting to another store's signal, with a valid CSRF token, is refused too.
    refused = clerk.post(
        f"/console/signals/{other}/claim",
        data={"csrf_token": csrf_of(page.text), "queue": "store:tre-ratina"},
    )
    assert refused.status_code == 403 and "not on a queue you work" in refused.text
    assert signal(polku, other)["status"] == "open"


def test_a_clerk_of_two_stores_may_switch_between_them(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    store(polku, "hki-itis")
    itis = routed(polku, "hki-itis")
    clerk = signed_in(
        polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi", "hki-itis")
    )
    page = clerk.get("/console/signals", params={"queue": "store:hki-itis"})
    assert page.status_code == 200 and f'data-signal="{itis}"' in page.text
    assert 'href="/console/signals?queue=store%3Ahki-kamppi"' in page.text


def test_an_agent_works_the_agents_queue_only(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    at_store, online = routed(polku, "hki-kamppi"), routed(polku, None, at=SUNDAY_0300)
    agent = signed_in(polku, user(polku, "eero@example.com", "agent"))
    page = agent.get("/console/signals")
    assert page.status_code == 200
    assert f'data-signal="{online}"' in page.text and f'data-signal="{at_store}"' not in page.text
    assert agent.get("/console/signals", params={"queue": "store:hki-kamppi"}).status_code == 403
    assert agent.get("/console/journeys").status_code == 403  # an agent may not edit journeys


def test_an_admin_sees_every_queue_and_an_unknown_one_is_404(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    at_store = routed(polku, "hki-kamppi", at=MONDAY_NOON)
    admin = signed_in(polku, user(polku, "admin@example.com", "admin"))
    page = admin.get("/console/signals", params={"queue": "store:hki-kamppi"})
    assert page.status_code == 200 and f'data-signal="{at_store}"' in page.text
    for queue in ("agents", "automation", "store:hki-kamppi"):
        assert f"/console/signals?queue={queue.replace(':', '%3A')}" in page.text
    missing = admin.get("/console/signals", params={"queue": "store:hki-nowhere"})
    assert missing.status_code == 404 and "no location “hki-nowhere”" in shown(missing)


def test_nothing_without_a_session(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    signal_id = routed(polku, "hki-kamppi")
    anonymous = TestClient(polku.client.app)
    for page in ("/console/", *PAGES):
        response = anonymous.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login"
    claim = anonymous.post(
        f"/console/signals/{signal_id}/claim", data={"csrf_token": "x"}, follow_redirects=False
    )
    assert claim.status_code == 303 and claim.headers["location"] == "/console/login"
    assert signal(polku, signal_id)["status"] == "open"


def test_a_parameter_the_console_cannot_use_gets_a_page_in_the_users_language(
    polku: Polku,
) -> None:
    store(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    too_long = {"queue": "store:" + "x" * 200}
    page = clerk.get("/console/signals", params=too_long)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "The page's address has a value the console cannot use: queue." in shown(page)
    finnish = clerk.get("/console/signals", params=too_long, headers={"Accept-Language": "fi"})
    assert "Sivun osoitteessa on arvo, jota konsoli ei voi käyttää: queue." in shown(finnish)
    # The API keeps its JSON answer.
    api = polku.client.get("/v1/recommendations", params={"k": 0}, headers=polku.admin)
    assert api.status_code == 400 and api.json()["error"]["field"] == "k"
