"""Working a buying signal from the console: claim, acknowledge and record the outcome through
the pages' forms (the signals domain's actions, so the API shows the same), someone else's
claim shown as a 409 with who holds it, a forged token refused, and the live list fragment."""

from __future__ import annotations

from console_world import csrf_of, routed, shown, signal, signed_in, store, user

from conftest import Polku


def test_a_clerk_claims_acknowledges_and_records_a_sale(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    signal_id = routed(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = clerk.get("/console/signals")
    assert "Viewed Tuuli jacket 3 times in 7 days" in page.text and "TUULI-JACKET" in page.text
    form = {"csrf_token": csrf_of(page.text), "queue": "store:hki-kamppi"}

    claimed = clerk.post(f"/console/signals/{signal_id}/claim", data=form, follow_redirects=False)
    assert claimed.status_code == 303
    assert claimed.headers["location"] == "/console/signals?queue=store%3Ahki-kamppi"
    body = signal(polku, signal_id)
    assert body["status"] == "claimed" and body["claimed_by"] == "aino@example.com"
    assert "Claimed by aino@example.com" in clerk.get("/console/signals").text

    assert clerk.post(f"/console/signals/{signal_id}/acknowledge", data=form).status_code == 200
    assert signal(polku, signal_id)["status"] == "acknowledged"

    sold = clerk.post(f"/console/signals/{signal_id}/outcome", data={**form, "outcome": "sold"})
    assert sold.status_code == 200  # after the redirect, the queue again
    assert signal(polku, signal_id)["outcome"] == "sold"
    assert 'data-testid="outcome">Sold<' in sold.text

    finnish = clerk.get("/console/signals", headers={"Accept-Language": "fi"})
    assert 'data-testid="outcome">Myyty<' in finnish.text
    assert "Katsoi tuotetta Tuuli-takki 3 kertaa 7 päivässä" in finnish.text


def test_someone_elses_claim_is_a_409_that_names_them(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    signal_id = routed(polku, "hki-kamppi")
    aino = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    eero = signed_in(polku, user(polku, "eero@example.com", "store_staff", "hki-kamppi"))
    for client in (aino, eero):
        token = csrf_of(client.get("/console/signals").text)
        last = client.post(f"/console/signals/{signal_id}/claim", data={"csrf_token": token})
    assert last.status_code == 409
    assert "already claimed by aino@example.com" in shown(last)
    assert signal(polku, signal_id)["claimed_by"] == "aino@example.com"


def test_a_bad_outcome_or_a_forged_token_changes_nothing(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    signal_id = routed(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    forged = clerk.post(f"/console/signals/{signal_id}/claim", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and signal(polku, signal_id)["status"] == "open"
    token = csrf_of(clerk.get("/console/signals").text)
    clerk.post(f"/console/signals/{signal_id}/claim", data={"csrf_token": token})
    bad = clerk.post(
        f"/console/signals/{signal_id}/outcome", data={"csrf_token": token, "outcome": "maybe"}
    )
    assert bad.status_code == 409 and "There is no outcome “maybe”" in shown(bad)
    assert signal(polku, signal_id)["outcome"] is None


def test_the_list_fragment_shows_new_signals(polku: Polku) -> None:
    store(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = clerk.get("/console/signals")
    assert 'data-refresh="/console/signals/list?queue=store%3Ahki-kamppi"' in page.text
    assert "No signals in this queue." in page.text
    signal_id = routed(polku, "hki-kamppi")
    fragment = clerk.get("/console/signals/list", params={"queue": "store:hki-kamppi"})
    assert fragment.status_code == 200 and f'data-signal="{signal_id}"' in fragment.text
    assert "<html" not in fragment.text
