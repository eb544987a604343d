"""The console's data pages: the debugger shows what arrived from which source and what was
rejected and why; write keys made on the page are accepted by the collection API; users
made on the page can sign in; only admins reach keys and users; forms need the CSRF token."""

from __future__ import annotations

import re

from console_world import PASSWORD, csrf_of, shown, sign_in, signed_in, user
from fastapi.testclient import TestClient

from conftest import Polku


def test_the_debugger_shows_an_accepted_event_with_its_source_and_a_rejected_one(
    polku: Polku,
) -> None:
    ok = polku.send("/v1/track", {"userId": "u-1", "event": "Jacket Viewed", "messageId": "m-ok"})
    assert ok.status_code < 300, ok.text
    bad = polku.send("/v1/track", {"event": "Nobody", "messageId": "m-bad"})
    assert bad.status_code >= 400
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    page = marketer.get("/console/data")
    assert page.status_code == 200
    assert "Jacket Viewed" in page.text and "m-ok" in page.text and "u-1" in page.text
    assert "web" in page.text  # the test write key's source
    rejected = page.text.split('data-testid="rejected"')[1]
    assert "<code>" in rejected and "userId" in rejected

    only = marketer.get("/console/data/events?kind=rejected").text
    assert "m-ok" not in only and "userId" in only
    elsewhere = marketer.get("/console/data/events?source=src_none").text
    assert "m-ok" not in elsewhere
    finnish = marketer.get("/console/data", headers={"Accept-Language": "fi"})
    assert "Hylätyt tapahtumat" in finnish.text and "Tapahtumien seuranta" in finnish.text

    offset = re.search(r'href="/console/data/events/(\d+)"', page.text)
    assert offset is not None
    detail = marketer.get(f"/console/data/events/{offset.group(1)}")
    assert detail.status_code == 200 and "&#34;userId&#34;: &#34;u-1&#34;" in detail.text
    assert marketer.get("/console/data/events/999999").status_code == 404
    assert marketer.get("/console/data/events/<x>").status_code == 404


def test_a_marketer_may_not_see_keys_or_users(polku: Polku) -> None:
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    assert marketer.get("/console/data/sources").status_code == 403
    assert marketer.get("/console/data/users").status_code == 403
    token = csrf_of(marketer.get("/console/signals").text)
    made = marketer.post("/console/data/users", data={"csrf_token": token, "email": "a@b.fi"})
    assert made.status_code == 403


def test_a_write_key_made_on_the_page_is_accepted_and_revoked(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    page = admin.get("/console/data/sources")
    token = csrf_of(page.text)
    made = admin.post("/console/data/sources", data={"csrf_token": token, "source_name": "pos"})
    assert made.status_code == 201
    key = re.search(r'data-testid="new-key">([^<]+)<', made.text)
    assert key is not None
    sent = polku.client.post(
        "/v1/track", json={"userId": "u-2", "event": "Paid"}, auth=(key.group(1), "")
    )
    assert sent.status_code < 300, sent.text
    assert key.group(1) not in admin.get("/console/data/sources").text  # shown only once

    source_id = re.search(r"pos</td><td><code>(src_\w+)</code>", made.text)
    assert source_id is not None
    revoked = admin.post(
        f"/console/data/sources/{source_id.group(1)}/revoke", data={"csrf_token": token}
    )
    assert revoked.status_code == 200 and "Revoked" in revoked.text

    empty = admin.post("/console/data/sources", data={"csrf_token": token, "source_name": " "})
    assert empty.status_code == 400 and "1 to 64 characters" in empty.text
    forged = admin.post("/console/data/sources", data={"csrf_token": "no", "source_name": "x"})
    assert forged.status_code == 403


def test_a_user_made_on_the_page_can_sign_in(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    token = csrf_of(admin.get("/console/data/users").text)
    form = {
        "csrf_token": token,
        "email": "eero@example.com",
        "role": "marketer",
        "password": PASSWORD,
        "locale": "fi",
    }
    made = admin.post("/console/data/users", data=form)
    assert made.status_code == 201 and "eero@example.com" in made.text
    assert sign_in(TestClient(polku.client.app), "eero@example.com").status_code == 303

    again = admin.post("/console/data/users", data=form)
    assert again.status_code == 409 and "already a console user" in shown(again)
    bad_role = admin.post(
        "/console/data/users", data={**form, "email": "x@example.com", "role": "boss"}
    )
    assert 400 <= bad_role.status_code < 500

    new = {"csrf_token": token, "email": "eero@example.com", "password": "uusi salasana kuusi"}
    assert admin.post("/console/data/users/password", data=new).status_code == 200
    fresh = TestClient(polku.client.app)
    assert sign_in(fresh, "eero@example.com", "uusi salasana kuusi").status_code == 303
    nobody = admin.post("/console/data/users/password", data={**new, "email": "no@example.com"})
    assert nobody.status_code == 404


def test_a_deactivated_user_is_signed_out_and_cannot_sign_in_until_reactivated(
    polku: Polku,
) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    agent = signed_in(polku, user(polku, "eero@example.com", "agent"))
    token = csrf_of(admin.get("/console/data/users").text)
    off = admin.post(
        "/console/data/users/deactivate", data={"csrf_token": token, "email": "eero@example.com"}
    )
    assert off.status_code == 200 and "Reactivate" in off.text
    assert agent.get("/console/", follow_redirects=False).status_code == 303  # signed out
    assert sign_in(TestClient(polku.client.app), "eero@example.com").status_code == 401
    on = admin.post(
        "/console/data/users/reactivate", data={"csrf_token": token, "email": "eero@example.com"}
    )
    assert on.status_code == 200
    assert sign_in(TestClient(polku.client.app), "eero@example.com").status_code == 303
    myself = admin.post(
        "/console/data/users/deactivate", data={"csrf_token": token, "email": "ada@example.com"}
    )
    assert myself.status_code == 409 and "another admin" in shown(myself)
    forged = admin.post(
        "/console/data/users/deactivate", data={"csrf_token": "x", "email": "eero@example.com"}
    )
    assert forged.status_code == 403


def test_the_channel_settings_show_where_they_come_from_and_never_a_secret(polku: Polku) -> None:
    admin = signed_in(polku, user(polku, "ada@example.com", "admin"))
    page = admin.get("/console/data/channels")
    assert page.status_code == 200
    assert "POLKU_SMTP_URL" in page.text and "POLKU_SMS_GATEWAY_TOKEN" in page.text
    assert "Polku's default" in shown(page)
    token = csrf_of(page.text)
    unset = admin.post("/console/data/channels/test-email", data={"csrf_token": token})
    assert unset.status_code == 409 and "set POLKU_SMTP_URL" in unset.text
    marketer = signed_in(polku, user(polku, "mia@example.com", "marketer"))
    assert marketer.get("/console/data/channels").status_code == 403
