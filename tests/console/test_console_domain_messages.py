"""The console says what the domain packages say in the user's language: every error the
signals, stock, returns, gift card, identity and journeys code can raise into a console page
has words in both languages for exactly the values it carries (checked over the source), and
real refusals (a claim someone holds, stock the store lacks, an un-merge undone already, a
journey document that cannot be saved) and a journey's verdict and decision trace (no
consent, quiet hours) appear in Finnish for a Finnish user and in English for an English one.
"""

from __future__ import annotations

import ast
import re
import string
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from commerce_world import reserve, shop
from console_world import csrf_of, routed, shown, signed_in, store, user
from customers_world import signal_for
from test_console_customers import anna, merges_of, profile_of_email
from test_console_journeys import FIXED, THANKS, put

from conftest import Polku
from polku.console.i18n import catalogue, explain, trace_outcome, verdict
from polku.errors import Conflict, NotFound

SRC = Path(__file__).parents[2] / "src" / "polku"
MODULES = (
    "signals/actions.py",
    "signals/queries.py",
    "identity/actions.py",
    "identity/queries.py",
    "commerce/stock/actions.py",
    "commerce/stock/queries.py",
    "commerce/returns/actions.py",
    "commerce/returns/queries.py",
    "commerce/giftcards/actions.py",
    "journeys/actions.py",
    "journeys/queries.py",
    "journeys/proofs.py",
    "journeys/content.py",
    "journeys/definition.py",
    "journeys/conditions.py",
    "console/commerce_view.py",
    "console/commerce_pages.py",
    "console/signals_pages.py",
    "console/journey_pages.py",
)
"""The modules whose every error can reach a console page."""
FUNCTIONS = {
    # Of these modules, only the functions the console's pages reach.
    "signals/routing.py": {"check_queue"},
    "profiles/queries.py": {"_text", "build"},
    "commerce/locations/queries.py": {"unknown_location"},
}
ERRORS = {
    "PolkuError": "internal_error",
    "BadRequest": "bad_request",
    "InvalidField": "invalid_field",
    "InvalidJourney": "invalid_journey",
    "NotFound": "not_found",
    "Conflict": "conflict",
    "_fail": "invalid_journey",  # polku.journeys.definition's: (field, message, hint, id, **params)
    "_Problem": "invalid_template",  # polku.journeys.content's: (message, id, **params)
}


def _raised(path: str, only: set[str] | None) -> list[tuple[str, set[str], int]]:
    """(message id, the params' names, line) of every error constructed in `path`."""
    tree = ast.parse((SRC / path).read_text())
    found: list[tuple[str, set[str], int]] = []
    scopes = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and (only is None or node.name in only)
    ]
    seen: set[int] = set()
    for scope in scopes if only is not None else [tree]:
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in ERRORS or id(node) in seen:
                continue
            seen.add(id(node))
            keywords = {k.arg: k.value for k in node.keywords}
            params: set[str] = set()
            if node.func.id == "_fail" and len(node.args) >= 4:
                keywords["message_id"] = node.args[3]
                params = {k.arg for k in node.keywords if k.arg is not None}
            elif node.func.id == "_Problem" and len(node.args) >= 2:
                keywords["message_id"] = node.args[1]
                params = {k.arg for k in node.keywords if k.arg is not None}
            elif node.func.id == "_fail" or isinstance(
                keywords.get("message_id"), ast.Name | ast.Call
            ):
                continue  # _fail, and the template check's problems: their own id and values
            if "params" in keywords:
                given = keywords["params"]
                assert isinstance(given, ast.Dict), f"{path}:{node.lineno}: params is not a dict"
                params = {k.value for k in given.keys if isinstance(k, ast.Constant)}
            named = keywords.get("message_id") or keywords.get("code")
            ids: list[str]
            if named is None:
                ids = [ERRORS[node.func.id]]
            elif isinstance(named, ast.Constant):
                ids = [named.value]
            elif isinstance(named, ast.IfExp):
                ids = [branch.value for branch in (named.body, named.orelse)]  # type: ignore[attr-defined]
            else:
                raise AssertionError(f"{path}:{node.lineno}: the message id is not a constant")
            found.extend((mid, params, node.lineno) for mid in ids)
    return found


def _placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_every_error_a_page_can_show_has_words_in_both_languages() -> None:
    words = catalogue()
    sites = [(path, None) for path in MODULES] + list(FUNCTIONS.items())
    problems = []
    count = 0
    for path, only in sites:
        for mid, params, line in _raised(path, only):
            count += 1
            where = f"{path}:{line} ({mid})"
            if mid in ERRORS.values():
                problems.append(f"{where}: a generic code; give it a message_id")
                continue
            for prefix in ("err_", "errhint_"):
                entry = words.get(prefix + mid)
                if entry is None:
                    if prefix == "err_":
                        problems.append(f"{where}: no [err_{mid}] in the catalogue")
                    continue
                for locale in ("en", "fi"):
                    missing = _placeholders(entry[locale]) - params
                    if missing:
                        problems.append(f"{where}: {prefix}{mid}.{locale} needs {missing}")
    assert count > 160  # the check saw the raising code, not an empty list
    assert not problems, "\n".join(problems)


def test_every_verdict_and_every_reason_a_guard_gives_has_words() -> None:
    tree = ast.parse((SRC / "journeys/queries.py").read_text())
    [function] = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_verdict"
    ]
    codes = {
        node.value.elts[1].value
        for node in ast.walk(function)
        if isinstance(node, ast.Return)
        and isinstance(node.value, ast.Tuple)
        and isinstance(node.value.elts[1], ast.Constant)
    }
    codes |= {"dropped", "failed", "active", "active_waiting"}  # the conditional ones
    assert len(codes) >= 12
    words = catalogue()
    for code in codes:
        assert f"verdict_{code}" in words or f"verdict_{code}_one" in words, code
    guards = ast.parse((SRC / "journeys/guards.py").read_text())
    stops = {
        node.args[0].value
        for node in ast.walk(guards)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "stop"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert {"consent", "suppressed", "frequency_cap", "no_address"} <= stops
    for reason in stops | {"quiet_hours", "holdout", "control", "goodwill"}:
        assert f"trace_reason_{reason}" in words, reason


def test_explain_writes_values_as_the_language_does_and_falls_back_only_without_words() -> None:
    held = Conflict(
        "Gift card ending 1234 has €5.00 left; cannot redeem €12.50.",
        code="insufficient_balance",
        params={"last4": "1234", "balance_minor": 500, "amount_minor": 1250, "currency": "EUR"},
    )
    assert explain("fi", held) == (
        "Lahjakortilla, jonka koodi päättyy 1234, on jäljellä 5,00\xa0€: "
        "12,50\xa0€ ei voi lunastaa."
    )
    assert explain("en", held) == "Gift card ending 1234 has €5.00 left: cannot redeem €12.50."
    stranger = NotFound("Something only the API says.", code="made_up_for_this_test")
    assert explain("fi", stranger) == "Something only the API says."


def test_a_held_message_says_until_when_in_finnish() -> None:
    until = int(datetime(2026, 12, 3, 8, 0, tzinfo=ZoneInfo("Europe/Helsinki")).timestamp() * 1000)
    decision = {
        "kind": "delivery",
        "outcome": "held",
        "detail": {"reason": "quiet_hours", "until": until},
    }
    assert (
        trace_outcome("fi", decision)
        == "pidätetty (hiljaiset tunnit: odottaa 3.12.2026 klo 8.00 asti)"
    )
    assert trace_outcome("en", decision) == "held (quiet hours: held until 3 Dec 2026, 08:00)"
    explained = {
        "verdict": "Sent: ...",
        "verdict_code": "sent",
        "verdict_params": {"channel": "sms", "step": "s", "count": 1},
    }
    assert verdict("fi", explained) == "Lähetetty: Tekstiviesti vaiheessa s (yhteensä 1 viesti)."
    explained["verdict_params"] = {"channel": "sms", "step": "s", "count": 3}
    assert verdict("en", explained) == "Sent: SMS at step s (3 messages in all)."


# -- through the pages ---------------------------------------------------------------------


def test_a_claim_someone_holds_is_a_409_in_the_users_language(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    signal_id = routed(polku, "hki-kamppi")
    aino = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    eero = signed_in(
        polku, user(polku, "eero@example.com", "store_staff", "hki-kamppi", locale="fi")
    )
    pekka = signed_in(polku, user(polku, "pekka@example.com", "store_staff", "hki-kamppi"))
    for client in (aino, eero, pekka):
        token = csrf_of(client.get("/console/signals").text)
        last = client.post(f"/console/signals/{signal_id}/claim", data={"csrf_token": token})
        if client is eero:
            finnish = last
    assert finnish.status_code == 409
    said = shown(finnish)
    assert f"Signaalin {signal_id} on jo ottanut aino@example.com" in said
    assert "already claimed" not in said
    assert last.status_code == 409
    assert f"Signal {signal_id} is already claimed by aino@example.com" in shown(last)
    # The API keeps its English message and code.
    api = polku.client.post(
        f"/v1/signals/{signal_id}/claim", json={"staff_id": "x@example.com"}, headers=polku.admin
    )
    assert api.status_code == 409
    assert api.json()["error"]["message"].startswith(f"Signal {signal_id} is already claimed")


def _customer(polku: Polku, user_id: str) -> str:
    body = {"messageId": uuid.uuid4().hex, "userId": user_id, "traits": {"name": "Anna"}}
    assert polku.send("/v1/identify", body).status_code == 200
    polku.settle()
    found = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": user_id}, headers=polku.admin
    )
    assert found.status_code == 200, found.text
    return str(found.json()["profile_id"])


def test_reserving_what_the_store_lacks_is_a_409_in_finnish(polku: Polku) -> None:
    shop(polku)  # Ratina in Tampere has no jackets
    signal_id = signal_for(polku, _customer(polku, "anna-r"), "tre-ratina")
    clerk = signed_in(polku, user(polku, "ville@example.com", "store_staff", "tre-ratina"))
    token = csrf_of(clerk.get("/console/signals").text)
    form = {"csrf_token": token, "queue": "store:tre-ratina", "store": "tre-ratina"}
    refused = clerk.post(
        f"/console/signals/{signal_id}/reserve",
        data={**form, "sku": "takki-1-M"},
        headers={"Accept-Language": "fi"},
    )
    assert refused.status_code == 409
    said = shown(refused)
    assert "Tuotetta takki-1-M on saatavilla vain 0 toimipisteessä tre-ratina" in said
    assert "ei voi varata 1" in said and "available at" not in said
    english = clerk.post(f"/console/signals/{signal_id}/reserve", data={**form, "sku": "takki-1-M"})
    assert "Only 0 of takki-1-M available at tre-ratina: cannot reserve 1." in shown(english)


def test_a_closed_reservation_and_a_bad_refund_are_refused_in_finnish(polku: Polku) -> None:
    shop(polku)
    rid = reserve(polku, "hki-kamppi")
    clerk = signed_in(
        polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi", locale="fi")
    )
    token = csrf_of(clerk.get("/console/commerce/reservations").text)
    steps = f"/console/commerce/reservations/{rid}"
    assert clerk.post(f"{steps}/release", data={"csrf_token": token}).status_code == 200
    again = clerk.post(f"{steps}/ready", data={"csrf_token": token})
    assert again.status_code == 409
    said = shown(again)
    assert f"Varaus {rid} on tilassa ”vapautettu”: sitä ei voi nyt merkitä noudettavaksi." in said
    assert "cannot be" not in said
    missing = clerk.get("/console/commerce/products/nope")
    assert missing.status_code == 404
    assert "Tuotetta ”nope” ei ole valikoimassa" in shown(missing)


def test_an_un_merge_undone_already_is_a_409_in_finnish_with_a_finnish_date(
    polku: Polku,
) -> None:
    anna(polku)
    anna_id = profile_of_email(polku, "anna.virtanen@koti.fi")
    [merge] = merges_of(polku, anna_id)
    agent = signed_in(polku, user(polku, "eero@shop.example", "agent", locale="fi"))
    page = agent.get(f"/console/customers/{anna_id}")
    ledger = shown(page).split('id="h-identities"')[1].split("</section>")[0]
    assert "samassa tapahtumassa kuului molemmille profiileille" in ledger
    assert "belongs to both profiles" not in ledger
    token = csrf_of(page.text)
    action = f"/console/customers/{anna_id}/merges/{merge['merge_id']}/unmerge"
    done = agent.post(action, data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303, done.text
    twice = agent.post(action, data={"csrf_token": token}, follow_redirects=False)
    assert twice.status_code == 409
    said = shown(twice)
    assert f"Yhdistäminen {merge['merge_id']} on jo purettu " in said and " klo " in said
    assert "already undone" not in said
    nowhere = agent.post(
        f"/console/customers/{anna_id}/merges/m-nope/unmerge", data={"csrf_token": token}
    )
    assert nowhere.status_code == 404 and "There is no" not in shown(nowhere)
    english = agent.post(
        action, data={"csrf_token": token}, headers={"Accept-Language": "en"}
    )  # the user's own setting wins over the browser's
    assert "on jo purettu" in shown(english)


def test_a_journey_document_that_cannot_be_saved_says_so_in_finnish(polku: Polku) -> None:
    put(polku, THANKS)
    client = signed_in(polku, user(polku, "maija@example.com", "marketer"))
    fi = {"Accept-Language": "fi"}
    token = csrf_of(client.get("/console/journeys/thanks/edit").text)
    other = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": FIXED.replace("key: thanks", "key: x")},
        headers=fi,
    )
    assert other.status_code == 400
    said = shown(other)
    assert "Asiakirjan tunnus ”x” ei ole ”thanks”." in said
    assert "Pidä tunnus ennallaan" in said and "Keep the key" not in said
    waits = client.post(
        "/console/journeys/thanks/edit",
        data={
            "csrf_token": token,
            "document": FIXED.replace("wait: 1h", "wait_for: {event: Order Completed}"),
        },
        headers=fi,
    )
    assert waits.status_code == 400
    said = shown(waits)
    assert "wait_for tarvitsee aikarajan." in said
    assert "Kirjoita timeout: 2d (odotuksen pitää päättyä)." in said
    assert "needs a timeout" not in said and 'data-testid="error-field">steps[0:wait-a-bit]' in said
    broken = client.post(
        "/console/journeys/thanks/edit",
        data={"csrf_token": token, "document": "key: thanks\nsteps: [\n", "action": "validate"},
        headers=fi,
    )
    assert broken.status_code == 400
    said = shown(broken)
    assert "Asiakirja ei ole kelvollista YAML- tai JSON-muotoa rivillä" in said
    assert 'data-testid="error-line"' in said and "not valid YAML" not in said
    inline = FIXED.replace(
        "    template: order_thanks", "    content:\n      en: {subjekt: Hei, text: Kiitos}"
    )
    part = client.post(
        "/console/journeys/thanks/edit", data={"csrf_token": token, "document": inline}, headers=fi
    )
    assert part.status_code == 400
    said = shown(part)
    assert "Tuntematon osa ”subjekt”: käytä näitä:" in said
    assert "Korjaa viestipohjan teksti" in said and "Unknown part" not in said
    english = client.post(
        "/console/journeys/thanks/edit",
        data={
            "csrf_token": token,
            "document": FIXED.replace("wait: 1h", "wait_for: {event: Order Completed}"),
        },
    )
    assert "wait_for needs a timeout." in shown(english)
    assert "Write timeout: 2d (a wait must end)." in shown(english)
    again = client.post(
        "/console/journeys/new",
        data={"csrf_token": token, "document": FIXED, "action": "save"},
        headers=fi,
    )
    assert again.status_code == 409 and "Polku ”thanks” on jo olemassa" in shown(again)
    unknown = client.post("/console/journeys/nope/enable", data={"csrf_token": token}, headers=fi)
    assert unknown.status_code == 404 and "Polkua ”nope” ei ole tässä työtilassa." in shown(unknown)
    nobody = client.get("/console/journeys/thanks", params={"who": "nobody@example.fi"}, headers=fi)
    assert nobody.status_code == 404 and "Profiilia ”nobody@example.fi” ei ole" in shown(nobody)


def _buyer(polku: Polku, user_id: str, address: str, consent: dict[str, Any] | None) -> str:
    """A customer who identifies (with `consent`) and completes an order; their profile."""
    polku.client.put("/v1/journeys/settings", json={"holdout_percent": 0}, headers=polku.admin)
    traits: dict[str, Any] = {"email": address, "first_name": "Aino"}
    if consent is not None:
        traits["consent"] = consent
    for kind, body in (
        ("identify", {"userId": user_id, "traits": traits}),
        ("track", {"userId": user_id, "event": "Order Completed", "properties": {"total": 20}}),
    ):
        sent = polku.send(f"/v1/{kind}", {"messageId": uuid.uuid4().hex, **body})
        assert sent.status_code == 200, sent.text
    polku.settle()
    return profile_of_email(polku, address)


AT_ONCE = {**THANKS, "steps": THANKS["steps"][2:]}
"""The thank-you message as soon as the order completes."""


def test_a_message_dropped_for_want_of_consent_says_why_in_finnish(polku: Polku) -> None:
    put(polku, AT_ONCE)
    person = _buyer(polku, "u-1", "aino@example.fi", consent=None)
    client = signed_in(polku, user(polku, "maija@example.com", "marketer", locale="fi"))
    page = shown(client.get("/console/journeys/thanks", params={"who": "aino@example.fi"}))
    assert (
        "Ei lähetetty: vaiheen thank viesti (Sähköposti) jätettiin lähettämättä "
        "(ei suostumusta markkinointiin tällä kanavalla)." in page
    )
    assert (
        '<span data-reason="consent">ei suostumusta markkinointiin tällä kanavalla</span>' in page
    )
    assert "Lähetys" in page and "was dropped" not in page
    customer = shown(client.get(f"/console/customers/{person}"))
    journeys = customer.split('id="journeys"')[1].split("</section>")[0]
    assert "jätettiin lähettämättä (ei suostumusta markkinointiin tällä kanavalla)" in journeys
    assert "Lähetys: jätetty lähettämättä (ei suostumusta" in journeys
    assert "consent" not in journeys.replace('data-journey="thanks"', "")
    english = signed_in(polku, user(polku, "mark@example.com", "marketer", locale="en"))
    page = shown(english.get(f"/console/customers/{person}"))
    assert "Send: not sent (no consent to marketing on this channel)" in page


def test_a_message_held_for_quiet_hours_says_until_when_in_finnish(polku: Polku) -> None:
    now = datetime.now(ZoneInfo("Europe/Helsinki"))
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    quiet = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "channels": ["email"]}
    put(polku, AT_ONCE)
    settings = polku.client.put(
        "/v1/journeys/settings",
        json={"holdout_percent": 0, "quiet_hours": quiet},
        headers=polku.admin,
    )
    assert settings.status_code == 200, settings.text
    consent = {"marketing": {"email": True}}
    traits: dict[str, Any] = {"email": "aino@example.fi", "first_name": "Aino", "consent": consent}
    for kind, body in (
        ("identify", {"userId": "u-2", "traits": traits}),
        ("track", {"userId": "u-2", "event": "Order Completed", "properties": {"total": 20}}),
    ):
        assert polku.send(f"/v1/{kind}", {"messageId": uuid.uuid4().hex, **body}).status_code == 200
    polku.settle()
    client = signed_in(polku, user(polku, "maija@example.com", "marketer", locale="fi"))
    page = shown(client.get("/console/journeys/thanks", params={"who": "aino@example.fi"}))
    assert "hiljaiset tunnit" in page, page.split('data-testid="why"')[-1][:3000]
    assert "Ei vielä lähetetty: vaiheen thank viesti (Sähköposti) on tilassa ”pidätetty”." in page
    assert "quiet_hours" not in page.split('data-testid="why"')[1]


def test_every_count_a_template_words_has_a_singular_and_a_plural() -> None:
    templates = SRC / "console" / "templates"
    named: set[str] = set()
    for path in templates.rglob("*.html"):
        named |= set(re.findall(r"""\btn\(\s*["']([a-z0-9_]+)["']\s*,""", path.read_text()))
    assert {"cust_event_count", "sig_n_signals", "document_valid"} <= named
    words = catalogue()
    for key in named:
        for form in ("_one", "_other"):
            assert key + form in words, key + form
            for locale in ("en", "fi"):
                assert "{count}" in words[key + form][locale] or form == "_one", key + form
