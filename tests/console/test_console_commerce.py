"""The console's commerce pages over HTTP, on SQLite and PostgreSQL: a product's stock in
every store nearest first (with reserved units, online stock and the chart), a reservation
prepared and handed over through the page (the API agrees), a return inspected into the
outlet and refunded as a gift card (the API agrees), a clerk kept to their own stores, a
missing CSRF token, and bad input answered with a 4xx page."""

from __future__ import annotations

import re

from commerce_world import reservation, reserve, returned_at, shop, the_return
from console_world import csrf_of, shown, signed_in, user

from conftest import Polku


def rows_of(page: str) -> list[tuple[str, str, str]]:
    """(store id, available, distance) of each row of the availability table, in order."""
    found = re.findall(
        r'<tr data-store="([^"]+)">.*?data-testid="available">([^< ]+).*?'
        r'<td class="num">[^<]*</td>\s*<td class="num">([^<]+)</td>',
        page,
        re.S,
    )
    return [(s, a, d.strip()) for s, a, d in found]


def test_availability_lists_the_stores_nearest_first_with_reserved_units(polku: Polku) -> None:
    shop(polku)
    reserve(polku, "esp-isoomena", quantity=2)
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))

    page = clerk.get("/console/commerce/products/takki-1")
    assert page.status_code == 200
    assert rows_of(page.text) == [
        ("hki-kamppi", "2", "0 km"),
        ("esp-isoomena", "4", "10.8 km"),
        ("tre-ratina", "0", "160 km"),
    ]
    espoo = page.text.split('data-store="esp-isoomena"')[1].split("</tr>")[0]
    assert '<td class="num">2</td>' in espoo  # the two reserved units
    assert 'data-testid="online">Available online (warehouses): <strong>14<' in page.text
    assert "Nearest first from Kamppi." in page.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"' in page.text
    assert "Kamppi: 2; Iso Omena: 4; Ratina: 0" in page.text  # the chart's description
    assert "/console/static/commerce.css" in page.text

    # From Tampere's postal code, in Finnish, one size only.
    fi = clerk.get(
        "/console/commerce/products/takki-1",
        params={"postal_code": "33100", "sku": "takki-1-S"},
        headers={"Accept-Language": "fi"},
    )
    assert fi.status_code == 200
    assert [(s, a) for s, a, _ in rows_of(fi.text)] == [
        ("tre-ratina", "0"),
        ("esp-isoomena", "1"),
        ("hki-kamppi", "0"),
    ]
    assert "Saldo myymälöissä" in fi.text and "Lähimmät ensin" in fi.text
    assert "189,00\xa0€" in fi.text
    assert ">0,6 km<" in fi.text  # Finnish decimals in the distances


def test_the_search_finds_the_product_and_links_its_availability(polku: Polku) -> None:
    shop(polku)
    agent = signed_in(polku, user(polku, "eero@example.com", "agent"))
    page = agent.get("/console/commerce", params={"q": "talvitakki"})
    assert page.status_code == 200
    assert 'href="/console/commerce/products/takki-1">Talvitakki Revontuli</a>' in page.text
    assert "/console/commerce/reservations" not in page.text  # not an agent's work
    assert agent.get("/console/commerce/reservations").status_code == 403
    assert "No product matches" in shown(agent.get("/console/commerce", params={"q": "kattila"}))


def test_a_reservation_is_prepared_and_handed_over_through_the_page(polku: Polku) -> None:
    shop(polku)
    rid = reserve(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = clerk.get("/console/commerce/reservations")
    assert page.status_code == 200 and f'data-reservation="{rid}"' in page.text
    assert "To prepare" in page.text and "Talvitakki Revontuli" in page.text
    token = csrf_of(page.text)

    ready = clerk.post(
        f"/console/commerce/reservations/{rid}/ready",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert ready.status_code == 303
    assert ready.headers["location"] == "/console/commerce/reservations?store=hki-kamppi"
    assert reservation(polku, rid)["status"] == "ready"
    assert "Ready to hand over" in clerk.get("/console/commerce/reservations").text

    handed = clerk.post(f"/console/commerce/reservations/{rid}/collect", data={"csrf_token": token})
    assert handed.status_code == 200 and f'data-reservation="{rid}"' not in handed.text
    assert reservation(polku, rid)["status"] == "collected"
    levels = polku.client.get(
        "/v1/stock", params={"sku": "takki-1-M", "location_id": "hki-kamppi"}, headers=polku.admin
    ).json()["levels"]
    assert (levels[0]["on_hand"], levels[0]["reserved"]) == (1, 0)

    again = clerk.post(f"/console/commerce/reservations/{rid}/collect", data={"csrf_token": token})
    assert again.status_code == 409 and "cannot be collected now" in shown(again)


def test_a_return_is_inspected_into_the_outlet_and_refunded_as_a_gift_card(polku: Polku) -> None:
    shop(polku)
    rid = returned_at(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    page = clerk.get("/console/commerce/returns")
    assert page.status_code == 200 and f'id="return-{rid}"' in page.text
    assert "wrong size" in page.text
    token = csrf_of(page.text)

    inspected = clerk.post(
        f"/console/commerce/returns/{rid}/inspect",
        data={
            "csrf_token": token,
            "restock-0": "0",
            "outlet-0": "1",
            "dispose-0": "0",
            "condition-0": "tag cut",
        },
        follow_redirects=False,
    )
    assert inspected.status_code == 303, inspected.text
    body = the_return(polku, rid)
    assert body["status"] == "inspected" and body["lines"][0]["outlet"] == 1
    listings = polku.client.get(
        "/v1/outlet", params={"return_id": rid}, headers=polku.admin
    ).json()["listings"]
    assert [(x["location_id"], x["price"], x["condition"]) for x in listings] == [
        ("hki-kamppi", "132.30", "tag cut")
    ]
    after = clerk.get("/console/commerce/returns")
    assert f"<code>{listings[0]['listing_id']}</code>" in after.text and "€132.30" in after.text
    finnish = clerk.get("/console/commerce/returns", headers={"Accept-Language": "fi"})
    assert "132,30\xa0€ (ennen 189,00\xa0€)" in finnish.text and "Hyvitystapa" in finnish.text

    refunded = clerk.post(
        f"/console/commerce/returns/{rid}/refund", data={"csrf_token": token, "method": "gift_card"}
    )
    assert refunded.status_code == 200
    code = re.search(r'data-testid="giftcard-code">([^<]+)<', refunded.text)
    assert code is not None
    body = the_return(polku, rid)
    assert body["status"] == "refunded" and body["refund"]["method"] == "gift_card"
    assert body["refund"]["amount"] == "189.00"
    balance = polku.client.post(
        "/v1/giftcards/balance", json={"code": code.group(1)}, headers=polku.admin
    )
    assert balance.status_code == 200, balance.text
    assert 'data-testid="giftcard-amount">€207.90<' in refunded.text  # 10 % bonus
    listed = shown(clerk.get("/console/commerce/returns"))
    assert f"gift card ending {code.group(1)[-4:]}, worth €207.90" in listed

    # The customer's 360° view lists the return and the card (read for all orders at once).
    anna = polku.client.get(
        "/v1/profiles/lookup", params={"type": "user_id", "value": "anna"}, headers=polku.admin
    ).json()["profile_id"]
    returns = shown(clerk.get(f"/console/customers/{anna}")).split('id="returns"')[1]
    assert f"<code>{rid}</code>" in returns and "Refunded" in returns
    assert f"•••• {code.group(1)[-4:]}" in returns and "€207.90 / €207.90" in returns


def test_a_clerk_cannot_work_another_stores_reservations_or_returns(polku: Polku) -> None:
    shop(polku)
    rid = reserve(polku, "esp-isoomena")
    ret = returned_at(polku, "esp-isoomena")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    token = csrf_of(clerk.get("/console/commerce/reservations").text)

    assert clerk.get("/console/commerce/reservations?store=esp-isoomena").status_code == 403
    assert clerk.get("/console/commerce/returns?store=esp-isoomena").status_code == 403
    step = clerk.post(f"/console/commerce/reservations/{rid}/collect", data={"csrf_token": token})
    assert step.status_code == 403 and reservation(polku, rid)["status"] == "held"
    inspect = clerk.post(
        f"/console/commerce/returns/{ret}/inspect",
        data={"csrf_token": token, "restock-0": "1"},
    )
    assert inspect.status_code == 403 and the_return(polku, ret)["status"] == "received"
    refund = clerk.post(
        f"/console/commerce/returns/{ret}/refund", data={"csrf_token": token, "method": "gift_card"}
    )
    assert refund.status_code == 403

    # An admin picks any store.
    admin = signed_in(polku, user(polku, "admin@example.com", "admin"))
    page = admin.get("/console/commerce/reservations?store=esp-isoomena")
    assert page.status_code == 200 and f'data-reservation="{rid}"' in page.text


def test_a_missing_csrf_token_changes_nothing(polku: Polku) -> None:
    shop(polku)
    rid = reserve(polku, "hki-kamppi")
    ret = returned_at(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    assert clerk.post(f"/console/commerce/reservations/{rid}/ready").status_code == 403
    forged = clerk.post(
        f"/console/commerce/returns/{ret}/inspect",
        data={"csrf_token": "forged", "restock-0": "1"},
    )
    assert forged.status_code == 403
    assert reservation(polku, rid)["status"] == "held"
    assert the_return(polku, ret)["status"] == "received"


def test_bad_input_is_a_4xx_page_that_says_why(polku: Polku) -> None:
    shop(polku)
    ret = returned_at(polku, "hki-kamppi")
    clerk = signed_in(polku, user(polku, "aino@example.com", "store_staff", "hki-kamppi"))
    token = csrf_of(clerk.get("/console/commerce/returns").text)

    def bad(response: object, status: int, words: str) -> None:
        assert getattr(response, "status_code") == status  # noqa: B009
        assert words in shown(response), shown(response)[:3000]

    bad(clerk.get("/console/commerce/products/nope"), 404, "There is no product “nope”")
    bad(
        clerk.get("/console/commerce/products/takki-1?postal_code=123"),
        400,
        "Polku cannot place the postal code “123”",
    )
    bad(clerk.get("/console/commerce/products/takki-1?sku=x"), 404, "has no variant “x”")
    bad(clerk.get("/console/commerce/products/takki-1?store=zz"), 404, "no location “zz”")
    form = {"csrf_token": token}
    bad(
        clerk.post(f"/console/commerce/returns/{ret}/inspect", data={**form, "outlet-0": "x"}),
        400,
        "“x” is not a number of units",
    )
    bad(
        clerk.post(f"/console/commerce/returns/{ret}/inspect", data={**form, "restock-0": "2"}),
        400,
        "the inspection decides 2",
    )
    bad(
        clerk.post(f"/console/commerce/returns/{ret}/refund", data={**form, "method": "cash"}),
        400,
        "There is no refund method “cash”",
    )
    bad(clerk.post("/console/commerce/returns/nope/refund", data=form), 404, "no return nope")
    bad(clerk.post("/console/commerce/reservations/nope/ready", data=form), 404, "no reservation")
    assert the_return(polku, ret)["status"] == "received"
