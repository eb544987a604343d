"""Journey message content: every shipped template renders in Finnish and English with a full
context and with an empty one; HTML is escaped and carries the unsubscribe footer; inline
content, template errors that name the part, SMS length limits, money and dates per locale,
and the ready-made journeys checked by the real journey parser against these templates.
"""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from polku.errors import InvalidField
from polku.journeys import content as content_module
from polku.journeys.content import (
    SMS_LIMIT_GSM,
    SMS_LIMIT_UNICODE,
    TEMPLATES_DIR,
    Content,
    coupon_benefit,
    format_date,
    format_money,
    locale_of,
)
from polku.journeys.definition import parse_journey, parse_text

CONTENT = Content()
NAMES = CONTENT.names()
UNSUBSCRIBE = "https://polku.example/u/token-123"
SCRIPT = "<script>alert(1)</script>"
SHIPPED = [
    "abandoned_cart",
    "back_in_stock",
    "birthday",
    "browse_abandonment",
    "click_collect_ready",
    "click_collect_reminder",
    "cross_sell",
    "nps_survey",
    "order_thanks",
    "partner_service",
    "price_drop",
    "win_back",
]
WITH_SMS = [n for n in SHIPPED if (TEMPLATES_DIR / f"{n}.en.sms.j2").is_file()]
FINNISH = re.compile(r"\b(ja|on|sinua|sinulle|Hei|Kiitos|Hyvää|Tilauksesi|myymälässä)\b")
ENGLISH = re.compile(r"\b(the|you|your|Thank)\b", re.IGNORECASE)
NOT_ENGLISH = re.compile(r"\b(the|you|your|and)\b")


def tracked(url: str) -> str:
    return "https://polku.example/l/" + url.replace("https://", "")


def full(locale: str, first_name: str = "Aino") -> dict[str, Any]:
    """A context like `message_context` builds, in `locale` (words the context itself
    writes, such as stock lines, in that language too)."""
    fi = locale == "fi"
    stock = "2 jäljellä myymälässä Kamppi" if fi else "2 left at Kamppi, reserve for pickup"
    return {
        "profile": {"id": "p_1", "first_name": first_name, "traits": {"locale": locale}},
        "locale": locale,
        "event": {
            "order_id": "A-1001",
            "total": Decimal("79.80"),
            "currency": "EUR",
            "products": [{"name": "Pipo", "quantity": 2, "price": Decimal("39.90")}],
            "collect_by": "2026-12-04T18:00:00+02:00",
        },
        "event_name": "Order Completed",
        "cart": {
            "lines": [
                {
                    "name": "Kuoritakki",
                    "variant": "M",
                    "quantity": 1,
                    "price": Decimal("249.00"),
                    "currency": "EUR",
                    "line_total": Decimal("249.00"),
                    "available": True,
                    "availability": stock,
                }
            ],
            "value": Decimal("249.00"),
            "currency": "EUR",
            "quantity": 1,
        },
        "store": {
            "id": "hki-kamppi",
            "name": "Kamppi",
            "address": "Urho Kekkosen katu 1, 00100 Helsinki",
            "hours_today": "9\u201321",
            "click_and_collect": True,
        },
        "product": {
            "name": "Kuoritakki",
            "price": Decimal("199.00"),
            "previous_price": Decimal("249.00"),
            "currency": "EUR",
            "url": "https://shop.example/p/1",
            "stock": stock,
        },
        "recommendations": [
            {
                "name": "Villasukat",
                "price": Decimal("19.90"),
                "currency": "EUR",
                "url": "https://shop.example/p/2",
                "reason": "Sopii ostoskorisi kanssa" if fi else "Goes with your cart",
                "stock": stock,
            }
        ],
        "coupon": {"code": "TAKAISIN-7Q2", "percent": 15, "valid_until": "2026-12-31"},
        "partner": {"name": "Kokoamo Oy", "url": "https://kokoamo.example/varaa"},
        "survey_url": "https://survey.example/nps",
        "cart_url": "https://shop.example/cart",
        "shop_url": "https://shop.example",
        "track": tracked,
        "unsubscribe_url": UNSUBSCRIBE,
    }


# -- every shipped template ------------------------------------------------------------------


def test_the_public_names_are_pinned() -> None:
    assert content_module.__all__ == [
        "LOCALES",
        "PARTS",
        "SMS_LIMIT_GSM",
        "SMS_LIMIT_UNICODE",
        "TEMPLATES_DIR",
        "Channel",
        "Content",
        "Rendered",
        "coupon_benefit",
        "format_date",
        "format_money",
        "format_time",
        "limit_sms",
        "locale_of",
        "normal_locale",
        "sms_length",
        "sms_text",
    ]


def test_the_shipped_templates_are_the_documented_twelve() -> None:
    assert NAMES == SHIPPED
    for name in SHIPPED:
        for locale in ("en", "fi"):
            for part in ("subject", "txt", "html"):
                assert (TEMPLATES_DIR / f"{name}.{locale}.{part}.j2").is_file(), (name, part)


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("locale", ["fi", "en"])
def test_every_email_renders_in_its_language_with_a_full_context(name: str, locale: str) -> None:
    found = CONTENT.render(name, "email", full(locale))
    assert found.locale == locale
    assert found.subject.strip() and "\n" not in found.subject
    assert found.text.strip() and found.html.strip()
    assert "{{" not in found.text + found.html and "{%" not in found.text + found.html
    if locale == "fi":
        assert FINNISH.search(found.text), found.text
        assert not NOT_ENGLISH.search(found.text), found.text
        assert re.search("[äö]", found.subject + found.text)
    else:
        assert ENGLISH.search(found.text), found.text
        assert not re.search(r"\b(sinua|sinulle|Kiitos|myymälästä)\b", found.text)
    # the unsubscribe link: in the HTML footer (after the message body) and in the text
    assert f'href="{UNSUBSCRIBE}"' in found.html
    assert found.html.index(UNSUBSCRIBE) > found.html.index("border-top")
    assert found.text.rstrip().endswith(UNSUBSCRIBE)
    assert ('lang="fi"' if locale == "fi" else 'lang="en"') in found.html


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("locale", ["fi", "en"])
def test_every_email_renders_with_an_empty_context(name: str, locale: str) -> None:
    found = CONTENT.render(name, "email", {"locale": locale})
    assert found.subject.strip() and found.text.strip() and "<body" in found.html
    assert "None" not in found.text and "Undefined" not in found.text
    bare = CONTENT.render(name, "email", {})
    assert bare.locale == "en" and bare.subject.strip()


@pytest.mark.parametrize("name", SHIPPED)
def test_html_escapes_what_the_customer_typed(name: str) -> None:
    found = CONTENT.render(name, "email", full("fi", first_name=SCRIPT))
    assert "<script>" not in found.html
    if "Aino" in CONTENT.render(name, "email", full("fi")).html:
        assert "&lt;script&gt;" in found.html


@pytest.mark.parametrize("name", WITH_SMS)
@pytest.mark.parametrize("locale", ["fi", "en"])
def test_every_sms_fits_in_three_segments(name: str, locale: str) -> None:
    for context in (full(locale), {"locale": locale}):
        found = CONTENT.render(name, "sms", context)
        assert found.text.strip() and not found.subject and not found.html
        assert "\n" not in found.text and "\u00a0" not in found.text
        assert len(found.text) <= SMS_LIMIT_GSM and found.warnings == ()
    if locale == "fi":
        assert FINNISH.search(CONTENT.render(name, "sms", full(locale)).text)


def test_the_marketing_sms_carry_the_unsubscribe_link() -> None:
    for name in ("abandoned_cart", "win_back", "back_in_stock", "price_drop", "birthday"):
        assert CONTENT.render(name, "sms", full("fi")).text.endswith(UNSUBSCRIBE)


def test_a_template_without_an_sms_part_is_refused_for_sms() -> None:
    assert CONTENT.check("order_thanks", "sms") == [
        ("", "The template 'order_thanks' has no sms part for sms.")
    ]
    with pytest.raises(InvalidField) as caught:
        CONTENT.render("order_thanks", "sms", full("en"))
    assert caught.value.field == "order_thanks.sms"


def test_the_cart_email_shows_lines_store_stock_and_click_and_collect() -> None:
    found = CONTENT.render("abandoned_cart", "email", full("fi"))
    assert "Kuoritakki" in found.text and "249,00\u00a0€" in found.text
    assert "2 jäljellä myymälässä Kamppi" in found.text
    assert "Varaa ja nouda myymälästä" in found.text and "Varaa ja nouda myymälästä" in found.html
    assert tracked("https://shop.example/cart") in found.html
    english = CONTENT.render("abandoned_cart", "email", full("en"))
    assert "€249.00" in english.text and "Reserve and collect in store" in english.text


def test_the_nps_survey_links_every_score_through_the_tracker() -> None:
    found = CONTENT.render("nps_survey", "email", full("fi"))
    for score in range(11):
        link = tracked(f"https://survey.example/nps?score={score}&amp;order=A-1001")
        assert f'href="{link}"' in found.html
    assert "0\u201310" in found.text and tracked("https://survey.example/nps") in found.text


def test_a_point_of_sale_receipt_gets_the_store_thanks() -> None:
    context = {**full("fi"), "event_name": "POS Order Completed"}
    found = CONTENT.render("order_thanks", "email", context)
    assert found.subject == "Kiitos ostoksistasi myymälässä Kamppi!"


def test_coupons_and_gift_cards_are_put_in_words() -> None:
    win_back = CONTENT.render("win_back", "email", full("fi"))
    assert (
        win_back.subject
        == "Aino, meillä on ollut ikävä sinua: 15\u00a0%:n alennus seuraavasta ostoksestasi"
    )
    assert "Saat 15\u00a0%:n alennuksen seuraavasta ostoksestasi koodilla TAKAISIN-7Q2" in (
        win_back.text
    )
    assert "Koodi on voimassa 31.12.2026 asti" in win_back.text
    english = CONTENT.render("win_back", "email", full("en"))
    assert "Get 15% off your next order with the code TAKAISIN-7Q2" in english.text
    card = {"code": "GC-1234", "amount": 10, "currency": "EUR", "giftcard_id": "gc_1"}
    birthday = CONTENT.render("birthday", "email", {**full("fi"), "giftcard": card})
    assert "Lahjaksi saat 10\u00a0€:n lahjakortin. Lahjakortin koodi on GC-1234" in birthday.text
    assert "GC-1234" in birthday.html and "TAKAISIN" not in birthday.html
    birthday_en = CONTENT.render("birthday", "sms", {**full("en"), "giftcard": card})
    assert "Here is a €10 gift card for you, code GC-1234." in birthday_en.text
    assert coupon_benefit({"amount": 5.5, "currency": "EUR"}, "fi", "get") == (
        "5,50\u00a0€:n alennuksen"
    )
    assert coupon_benefit({"benefit": "Kahvi kaupan päälle"}, "fi") == "Kahvi kaupan päälle"
    assert coupon_benefit(None, "en") == "" and coupon_benefit({"code": "X"}, "en") == ""


# -- locale ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ({"locale": "fi"}, "fi"),
        ({"locale": "fi-FI"}, "fi"),
        ({"locale": "fi_FI"}, "fi"),
        ({"language": "FI"}, "fi"),
        ({"locale": "sv-FI"}, "en"),
        ({"locale": "en-GB", "language": "fi"}, "en"),
        ({}, "en"),
        (None, "en"),
    ],
)
def test_the_locale_comes_from_the_traits(traits: dict[str, Any] | None, expected: str) -> None:
    assert locale_of(traits) == expected


def test_the_locale_falls_back_to_the_profile_traits() -> None:
    context = {"profile": {"traits": {"language": "fi"}, "first_name": "Aino"}}
    assert CONTENT.render("birthday", "email", context).subject.startswith("Hyvää")


def test_a_missing_language_file_falls_back_to_english(tmp_path: Path) -> None:
    for file in TEMPLATES_DIR.glob("_*"):
        shutil.copy(file, tmp_path)
    (tmp_path / "hello.en.subject.j2").write_text("Hello {{ profile.first_name }}")
    (tmp_path / "hello.en.txt.j2").write_text("Hello there.")
    (tmp_path / "hello.fi.txt.j2").write_text("Hei vain.")
    content = Content(tmp_path)
    found = content.render("hello", "email", {"locale": "fi", "profile": {"first_name": "Aino"}})
    assert found.subject == "Hello Aino"  # no Finnish subject: the English one
    assert found.text.startswith("Hei vain.")  # the Finnish text
    assert "Peru tilaus" not in found.text  # no unsubscribe_url given: no link line
    assert "<p>Hei vain.</p>" in found.html  # no html part: the text in the layout


# -- inline content --------------------------------------------------------------------------


INLINE = {
    "en": {
        "subject": "Hello {{ profile.first_name }}",
        "text": "Your cart is worth {{ cart.value | money(cart.currency) }}.",
        "html": "<p>Hello <b>{{ profile.first_name }}</b></p>",
        "sms": "Hi {{ profile.first_name }}: {{ track('https://shop.example') }}",
    },
    "fi": {
        "subject": "Hei {{ profile.first_name }}",
        "text": "Ostoskorisi arvo on {{ cart.value | money(cart.currency) }}.",
    },
}


def test_inline_content_renders_in_the_persons_language() -> None:
    found = CONTENT.render(INLINE, "email", full("fi", first_name=SCRIPT))
    assert found.locale == "fi"
    assert found.subject == f"Hei {SCRIPT}"  # a subject is plain text, never HTML
    assert found.text.startswith("Ostoskorisi arvo on 249,00\u00a0€.")
    assert found.text.rstrip().endswith(UNSUBSCRIBE)
    # Finnish gives no html: the Finnish text in the layout, not the English html
    assert "<p>Ostoskorisi arvo on 249,00\u00a0€.</p>" in found.html
    assert "Peru tilaus" in found.html and f'href="{UNSUBSCRIBE}"' in found.html
    english = CONTENT.render(INLINE, "email", full("en", first_name=SCRIPT))
    assert "<p>Hello <b>&lt;script&gt;alert(1)&lt;/script&gt;</b></p>" in english.html
    assert "Unsubscribe" in english.html and "<!DOCTYPE html>" in english.html
    sms = CONTENT.render(INLINE, "sms", full("en"))
    assert sms.text == f"Hi Aino: {tracked('https://shop.example')}"
    finnish_sms = CONTENT.render(INLINE, "sms", full("fi"))  # no Finnish sms: the text
    assert finnish_sms.text == "Ostoskorisi arvo on 249,00 €."
    swedish = CONTENT.render(INLINE, "email", {"locale": "sv"})  # no Swedish: English
    assert swedish.locale == "en" and swedish.subject == "Hello"


def test_inline_content_of_one_language_serves_everyone() -> None:
    flat = {"subject": "Hei", "text": "Hei {{ profile.first_name }}{{ nothing.at.all }}!"}
    found = CONTENT.render(flat, "email", {"locale": "fi", "profile": {"first_name": "Eino"}})
    assert found.subject == "Hei" and found.text.startswith("Hei Eino!")
    assert CONTENT.check(flat) == []


def test_inline_html_with_a_layout_of_its_own_is_kept_and_escaped() -> None:
    page = {"en": {"text": "x", "html": "<html><body>{{ profile.first_name }}</body></html>"}}
    found = CONTENT.render(page, "email", full("en", first_name="<b>"))
    assert found.html == "<html><body>&lt;b&gt;</body></html>"


def test_a_webhook_renders_the_text() -> None:
    body = {"en": {"text": '{"order": "{{ event.order_id }}"}'}}
    found = CONTENT.render(body, "webhook", full("en"))
    assert found.text == '{"order": "A-1001"}' and found.html == ""


# -- errors ----------------------------------------------------------------------------------


def test_a_syntax_error_names_the_language_and_part() -> None:
    broken = {"en": {"text": "fine"}, "fi": {"subject": "ok", "text": "Hei {% if cart %}"}}
    problems = CONTENT.check(broken)
    assert [part for part, _ in problems] == ["fi.text"]
    assert "line 1" in problems[0][1]
    with pytest.raises(InvalidField) as caught:
        CONTENT.render(broken, "email", {"locale": "fi"})
    assert caught.value.field == "content.fi.text"
    assert "syntax error" in caught.value.message and caught.value.hint
    assert CONTENT.render(broken, "email", {"locale": "en"}).text.startswith("fine")


def test_check_reports_the_shape_of_inline_content() -> None:
    assert CONTENT.check({"fi": {"body": "x"}}, "email") == [
        ("fi.body", "Unknown part 'body'; use subject, text, html, sms."),
        ("fi", "content.fi needs text for email."),
    ]
    assert CONTENT.check({"fi": {"text": 3}}) == [
        ("fi.text", "fi.text must be text (a template)."),
        ("fi", "content.fi needs text or sms or html for None."),
    ]
    assert CONTENT.check({"fi": {"subject": "x"}}, "sms") == [
        ("fi", "content.fi needs sms or text for sms.")
    ]
    assert CONTENT.check({}) and CONTENT.check("no_such_template")
    assert CONTENT.check("abandoned_cart", "email") == []
    assert CONTENT.check("abandoned_cart", "sms") == []


def test_a_shipped_template_with_a_syntax_error_names_its_file(tmp_path: Path) -> None:
    for file in TEMPLATES_DIR.glob("_*"):
        shutil.copy(file, tmp_path)
    (tmp_path / "broken.en.txt.j2").write_text("Hello {{ profile.first_name ")
    with pytest.raises(InvalidField) as caught:
        Content(tmp_path).render("broken", "email", {})
    assert caught.value.field == "broken.en.txt"


def test_a_filter_given_junk_names_the_part_and_says_what_to_do() -> None:
    junk = {"en": {"text": "{{ 'about fifty' | money('EUR') }}"}}
    with pytest.raises(InvalidField) as caught:
        CONTENT.render(junk, "email", {})
    assert caught.value.field == "content.en.text"
    assert "about fifty" in caught.value.message and "money" in (caught.value.hint or "")


def test_an_unknown_template_name_is_refused() -> None:
    with pytest.raises(InvalidField) as caught:
        CONTENT.render("abandoned_basket", "email", {})
    assert caught.value.field == "template" and "abandoned_cart" in (caught.value.hint or "")


def test_the_sandbox_keeps_templates_away_from_python() -> None:
    sneaky = {"en": {"text": "{{ track.__globals__ }}{{ ''.__class__.__mro__ }}"}}
    with pytest.raises(InvalidField):
        CONTENT.render(sneaky, "email", full("en"))


# -- SMS length ------------------------------------------------------------------------------


def test_a_long_sms_is_cut_to_three_segments_with_an_ellipsis() -> None:
    long = {"en": {"sms": "Tervetuloa ostoksille! " * 40}}
    found = CONTENT.render(long, "sms", {})
    assert len(found.text) <= SMS_LIMIT_GSM and found.text.endswith("...")
    assert len(found.text) > SMS_LIMIT_GSM - 30
    assert found.warnings and "three segments" in found.warnings[0]


def test_a_cut_sms_keeps_its_closing_link_whole() -> None:
    link = "https://polku.example/l/" + "a" * 120
    long = {"fi": {"sms": "Hei! " + "Ostoskorisi odottaa sinua. " * 30 + link}}
    found = CONTENT.render(long, "sms", {"locale": "fi"})
    assert found.text.endswith("... " + link) and len(found.text) <= SMS_LIMIT_GSM


def test_an_sms_outside_gsm_7_gets_the_smaller_unicode_limit() -> None:
    long = {"en": {"sms": "Hyvää joulua 🎄 " * 40}}
    found = CONTENT.render(long, "sms", {})
    assert len(found.text.encode("utf-16-le")) // 2 <= SMS_LIMIT_UNICODE
    assert found.text.endswith("…")


def test_finnish_prices_in_an_sms_stay_within_gsm_7() -> None:
    short = {"fi": {"sms": "Hinta nyt {{ 1249.9 | money('EUR') }} \u2013 vain tänään"}}
    found = CONTENT.render(short, "sms", {"locale": "fi"})
    assert found.text == "Hinta nyt 1 249,90 € - vain tänään"


# -- money and dates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "locale", "expected"),
    [
        (Decimal("49.90"), "EUR", "fi", "49,90\u00a0€"),
        (Decimal("49.90"), "EUR", "en", "€49.90"),
        (4990, "EUR", "fi", "49,90\u00a0€"),  # an int is minor units, as Polku stores prices
        ("1249.5", "EUR", "fi", "1\u00a0249,50\u00a0€"),
        (1249.5, "EUR", "en", "€1,249.50"),
        (Decimal("299"), "SEK", "fi", "299,00\u00a0kr"),
        (Decimal("299"), "SEK", "en", "SEK\u00a0299.00"),
        (1200, "JPY", "en", "JPY\u00a01,200"),
        (None, "EUR", "fi", ""),
    ],
)
def test_money_as_each_locale_writes_it(
    value: Any, currency: str, locale: str, expected: str
) -> None:
    assert format_money(value, currency, locale) == expected


def test_dates_as_each_locale_writes_them() -> None:
    moment = "2026-12-04T16:00:00Z"  # 18:00 in Helsinki
    assert format_date(moment, "fi") == "4.12.2026"
    assert format_date(moment, "fi", "short") == "4.12."
    assert format_date(moment, "fi", "long") == "perjantaina 4.12.2026"
    assert format_date(moment, "en") == "4 December 2026"
    assert format_date(moment, "en", "long") == "Friday 4 December 2026"
    assert format_date("2026-03-01", "en", "short") == "1 Mar"
    assert format_date(None, "fi") == ""
    inline = {"fi": {"text": "{{ when | date }} klo {{ when | time }}"}}
    found = CONTENT.render(inline, "email", {"locale": "fi", "when": moment})
    assert found.text.startswith("4.12.2026 klo 18.00")


# -- the ready-made journeys -----------------------------------------------------------------


LIBRARY = sorted((TEMPLATES_DIR.parent / "library").glob("*.yaml"))


def test_the_library_holds_the_documented_journeys() -> None:
    assert [path.stem for path in LIBRARY] == [
        "abandoned-cart",
        "back-in-stock",
        "birthday",
        "browse-abandonment",
        "click-collect-ready",
        "click-collect-reminder",
        "order-thanks",
        "partner-service",
        "post-purchase",
        "price-drop",
        "win-back",
    ]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_each_library_journey_parses_and_names_shipped_templates(path: Path) -> None:
    document = parse_text(path.read_text(encoding="utf-8"), source=path.name)
    journey = parse_journey(document, templates=CONTENT.check)
    assert journey.key == path.stem
    assert set(document["name"]) == {"en", "fi"}
    sends = [s for s in document["steps"] if s.get("send") in ("email", "sms")]
    assert sends, "a ready-made journey sends something"
    for step in sends:
        assert step["template"] in NAMES
        assert step["purpose"] in ("marketing", "transactional")
