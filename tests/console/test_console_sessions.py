"""Signing in and out of the console over HTTP, on SQLite and PostgreSQL: the session cookie
(HttpOnly, SameSite=Lax, Secure over https), logout ending the session on the server, wrong
passwords, the per-email sign-in limit, CSRF refusals, and the language of the pages."""

from __future__ import annotations

from console_world import PASSWORD, csrf_of, sign_in, signed_in, user
from fastapi.testclient import TestClient

from conftest import Polku
from polku.console.actions import FAILURE_LIMIT, set_password


def test_sign_in_sets_a_session_cookie_and_sign_out_ends_the_session(polku: Polku) -> None:
    user(polku, "aino@example.com", "admin")
    client = TestClient(polku.client.app)
    before = client.get("/console/", follow_redirects=False)
    assert before.status_code == 303 and before.headers["location"] == "/console/login"

    response = sign_in(client, "  Aino@Example.COM ")  # emails match case-insensitively
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("polku_console=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # served over http here
    token = client.cookies.get("polku_console")
    assert token and token not in str(polku.runtime.engine.url)

    home = client.get("/console/")
    assert home.status_code == 200
    assert "aino@example.com" in home.text and "Administrator" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]

    out = client.post(
        "/console/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    # The old cookie, replayed by someone who copied it, no longer signs anyone in.
    thief = TestClient(polku.client.app, cookies={"polku_console": token})
    replay = thief.get("/console/", follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"] == "/console/login"


def test_the_cookies_are_secure_over_https(polku: Polku) -> None:
    user(polku, "aino@example.com", "admin")
    client = TestClient(polku.client.app, base_url="https://testserver")
    page = client.get("/console/login")
    assert "Secure" in page.headers["set-cookie"]  # the sign-in form's CSRF cookie
    response = sign_in(client, "aino@example.com")
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("polku_console=")
    )
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_a_wrong_password_or_an_unknown_email_gets_the_same_answer(polku: Polku) -> None:
    user(polku, "aino@example.com", "agent")
    client = TestClient(polku.client.app)
    wrong = sign_in(client, "aino@example.com", "not the password")
    unknown = sign_in(client, "nobody@example.com", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong email or password." in response.text
        assert "polku_console=" not in response.headers.get("set-cookie", "")
    assert client.get("/console/", follow_redirects=False).status_code == 303
    assert 'value="aino@example.com"' in wrong.text  # the form keeps the email


def test_sign_in_pauses_after_five_wrong_passwords_until_a_new_one_is_set(polku: Polku) -> None:
    user(polku, "aino@example.com", "agent")
    user(polku, "eero@example.com", "agent")
    client = TestClient(polku.client.app)
    for _ in range(FAILURE_LIMIT):
        assert sign_in(client, "aino@example.com", "guess guess guess").status_code == 401
    paused = sign_in(client, "aino@example.com")  # even the right password
    assert paused.status_code == 429
    assert "sign-in is paused for 15 minutes" in paused.text
    assert client.get("/console/", follow_redirects=False).status_code == 303
    # Per email: another user signs in as usual.
    assert sign_in(TestClient(polku.client.app), "eero@example.com").status_code == 303
    set_password(polku.runtime.engine, "aino@example.com", "a brand new passphrase")
    assert sign_in(client, "aino@example.com", "a brand new passphrase").status_code == 303


def test_a_new_password_ends_every_session_of_the_user(polku: Polku) -> None:
    user(polku, "aino@example.com", "agent")
    client = signed_in(polku, "aino@example.com")
    assert client.get("/console/").status_code == 200
    set_password(polku.runtime.engine, "aino@example.com", "a brand new passphrase")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(polku: Polku) -> None:
    user(polku, "aino@example.com", "admin")
    client = signed_in(polku, "aino@example.com")
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post("/console/logout", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    assert client.get("/console/").status_code == 200  # still signed in
    # A JSON body is not a form: refused the same way.
    home = client.get("/console/")
    as_json = client.post("/console/logout", json={"csrf_token": csrf_of(home.text)})
    assert as_json.status_code == 403

    # The sign-in form needs its own token, double-submitted in a cookie.
    stranger = TestClient(polku.client.app)
    forged = stranger.post(
        "/console/login",
        data={"email": "aino@example.com", "password": PASSWORD, "csrf_token": "x"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "polku_console=" not in forged.headers.get(
        "set-cookie", ""
    )


def test_a_form_over_the_limit_gets_a_413_page_that_says_so(polku: Polku) -> None:
    user(polku, "aino@example.com", "admin")
    client = signed_in(polku, "aino@example.com")
    token = csrf_of(client.get("/console/").text)
    big = client.post(
        "/console/language",
        data={"csrf_token": token, "locale": "fi", "padding": "x" * 70_000},
        follow_redirects=False,
    )
    assert big.status_code == 413
    assert "larger than 64 KB" in big.text
    assert client.get("/console/").status_code == 200  # still signed in, nothing changed


def test_pages_speak_finnish_or_english_by_setting_or_browser(polku: Polku) -> None:
    client = TestClient(polku.client.app)
    finnish = client.get("/console/login", headers={"Accept-Language": "fi-FI,fi;q=0.9,en;q=0.5"})
    assert '<html lang="fi">' in finnish.text and "Kirjaudu sisään" in finnish.text
    english = client.get("/console/login", headers={"Accept-Language": "sv,en;q=0.8,fi;q=0.2"})
    assert '<html lang="en">' in english.text and "Sign in" in english.text

    user(polku, "aino@example.com", "agent", locale="en")
    browser = signed_in(polku, "aino@example.com")
    home = browser.get("/console/", headers={"Accept-Language": "fi"})
    assert "Customer-service agent" in home.text  # the user's own setting wins
    changed = browser.post(
        "/console/language",
        data={"csrf_token": csrf_of(home.text), "locale": "fi"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert "Asiakaspalvelija" in browser.get("/console/").text
    unknown = browser.post(
        "/console/language", data={"csrf_token": csrf_of(home.text), "locale": "sv"}
    )
    assert unknown.status_code == 400
    assert "Tuntematon kieli &#39;sv&#39;" in unknown.text  # in the language now chosen
    assert "Unknown language" not in unknown.text
    assert "Asiakaspalvelija" in browser.get("/console/").text  # unchanged
