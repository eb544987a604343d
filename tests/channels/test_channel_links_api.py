"""The channels' HTTP edge on SQLite and PostgreSQL, with the pipeline running: one-click
unsubscribe end to end (the page asks, the POST withdraws the consent, the profile shows
it), tracked links that land on the timeline and redirect, and refused tampered links."""

from __future__ import annotations

import uuid
from typing import Any

from conftest import Polku
from polku.channels.links import make_token, tracked_url
from polku.channels.registry import Channels

EMAIL = "anna.virtanen@example.fi"


def batch(polku: Polku, *messages: dict[str, Any]) -> None:
    for message in messages:
        message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    polku.settle()


def get(polku: Polku, path: str, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    return response.json()


def subscriber(polku: Polku) -> str:
    """A signed-in shopper who agreed to marketing email and SMS; their profile id."""
    batch(
        polku,
        {
            "type": "identify",
            "userId": "u-anna",
            "traits": {
                "email": EMAIL,
                "phone": "+358401234567",
                "consent": {"marketing": {"email": True, "sms": True}},
            },
        },
    )
    found: str = get(polku, "/v1/profiles/lookup", type="email", value=EMAIL)["profile_id"]
    return found


def consent(polku: Polku, profile_id: str, channel: str) -> dict[str, Any]:
    entry: dict[str, Any] = get(polku, f"/v1/profiles/{profile_id}/consent")["consent"][
        "marketing"
    ][channel]
    return entry


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_one_click_unsubscribe_end_to_end(polku: Polku) -> None:
    person = subscriber(polku)
    channels = Channels.from_settings(polku.runtime.settings)
    url = channels.unsubscribe_url("default", person, "marketing", "email", locale="fi")
    assert url.startswith(channels.base_url + "/u/")
    path = path_of(url)

    page = polku.client.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert 'lang="fi"' in page.text and "Peru tilaus" in page.text
    assert "markkinointiviestit sähköpostilla" in page.text
    assert '<form method="post">' in page.text and "One-Click" in page.text
    polku.settle()
    assert consent(polku, person, "email")["granted"] is True  # asking changes nothing

    done = polku.client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    assert "Tilaus peruttu" in done.text
    polku.settle()
    email = consent(polku, person, "email")
    assert email["granted"] is False
    assert email["source"] == "unsubscribe_link"
    assert consent(polku, person, "sms")["granted"] is True  # only the link's channel
    [event] = get(polku, f"/v1/profiles/{person}/timeline", event="Consent Updated")["events"]
    properties = event["message"]["properties"]
    assert properties["requested_by"] == "recipient"
    assert (properties["purpose"], properties["channel"]) == ("marketing", "email")
    assert event["message"]["userId"] == "u-anna"

    # a second click (a mail provider's retry) is harmless and answers the same
    again = polku.client.post(path, content="List-Unsubscribe=One-Click")
    assert again.status_code == 200
    polku.settle()
    assert consent(polku, person, "email")["granted"] is False


def test_the_page_speaks_the_browsers_language(polku: Polku) -> None:
    person = subscriber(polku)
    channels = Channels.from_settings(polku.runtime.settings)
    path = path_of(channels.unsubscribe_url("default", person, "marketing", "sms"))
    english = polku.client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9,fi;q=0.5"})
    assert "Do you want to stop getting marketing messages by text message?" in english.text
    assert "Peru tilaus" not in english.text
    finnish = polku.client.get(path, headers={"Accept-Language": "sv;q=1, fi;q=0.8"})
    assert "tekstiviestillä" in finnish.text and ">Unsubscribe<" not in finnish.text
    both = polku.client.get(path)
    assert "Peru tilaus" in both.text and ">Unsubscribe<" in both.text


def test_tampered_links_are_refused(polku: Polku) -> None:
    person = subscriber(polku)
    channels = Channels.from_settings(polku.runtime.settings)
    token = path_of(channels.unsubscribe_url("default", person, "marketing", "email"))[3:]
    body, mac = token.split(".")
    swapped = "B" if body[5] != "B" else "C"
    forged = [
        f"{body[:5]}{swapped}{body[6:]}.{mac}",  # an edited payload
        f"{body}.{mac[:-2]}xx",  # an edited signature
        make_token(
            "another-secret-0123456789",
            {"w": "default", "p": person, "u": "marketing", "c": "email"},
        ),
        "not-a-token",
        "äö.åß",
        make_token(channels.secret, {"w": "default", "p": person}),  # signed, but not a link
    ]
    for bad in forged:
        for method in ("get", "post"):
            response = polku.client.request(method, f"/u/{bad}")
            assert response.status_code == 404, (bad, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_link"
            assert error["field"] == "token"
            assert "link" in error["hint"]
    browser = polku.client.get(f"/u/{forged[0]}", headers={"Accept": "text/html"})
    assert browser.status_code == 404
    assert "invalid_link" in browser.text and "Linkki ei toimi" in browser.text
    polku.settle()
    assert consent(polku, person, "email")["granted"] is True
    assert get(polku, f"/v1/profiles/{person}/timeline", event="Consent Updated")["events"] == []

    too_big = polku.client.post(f"/u/{token}", content="x" * 10_000)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["field"] == "body"


def test_a_tracked_link_lands_on_the_timeline_and_redirects(polku: Polku) -> None:
    person = subscriber(polku)
    channels = Channels.from_settings(polku.runtime.settings)
    target = "https://shop.example.fi/tuote/jaatelokone?utm_source=polku"
    url = channels.tracked_url("default", person, "send-42", target)
    response = polku.client.get(path_of(url), follow_redirects=False)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == target
    polku.settle()
    [event] = get(polku, f"/v1/profiles/{person}/timeline", event="Message Link Clicked")["events"]
    assert event["message"]["properties"] == {"send_id": "send-42", "url": target}
    assert event["message"]["userId"] == "u-anna"

    secret = channels.secret
    for bad in (
        tracked_url(
            "http://x",
            secret,
            workspace_id="default",
            profile_id=person,
            send_id="s",
            url="javascript:alert(1)",
        ),
        tracked_url(
            "http://x",
            secret,
            workspace_id="default",
            profile_id=person,
            send_id="s",
            url="//evil.example/",
        ),
        tracked_url(
            "http://x",
            "another-secret-0123456789",
            workspace_id="default",
            profile_id=person,
            send_id="s",
            url=target,
        ),
    ):
        refused = polku.client.get(path_of(bad), follow_redirects=False)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "invalid_link"

    # a click for a profile that is gone still takes the person where the link goes
    gone = channels.tracked_url("default", "p_nobody", "send-43", target)
    response = polku.client.get(path_of(gone), follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, target)
