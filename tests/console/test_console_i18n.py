"""The console's catalogues: every key in both languages, every key a template names exists,
and dates, numbers and money as Finnish and English write them."""

from __future__ import annotations

import re
from pathlib import Path

from polku.console import i18n
from polku.console.i18n import (
    catalogue,
    format_day,
    format_money,
    format_number,
    format_percent_of,
    format_time,
    pick_locale,
    text,
)

TEMPLATES = Path(i18n.__file__).parent / "templates"
NBSP = "\u00a0"


def test_every_key_has_finnish_and_english_and_differs_from_its_key() -> None:
    found = catalogue()
    assert len(found) > 50
    for key, entry in found.items():
        assert set(entry) == {"fi", "en"}, key
        assert entry["fi"].strip() and entry["en"].strip(), key


def test_every_key_a_template_names_is_in_the_catalogue() -> None:
    named = set()
    for path in TEMPLATES.rglob("*.html"):
        named |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", path.read_text()))
    missing = sorted(named - set(catalogue()))
    assert not missing, f"keys named in templates but in no messages/*.toml: {missing}"


def test_placeholders_are_filled_in_both_languages() -> None:
    assert text("en", "queue_store", store="HEL") == "Store HEL"
    assert text("fi", "queue_store", store="HEL") == "Myymälä HEL"


def test_finnish_and_english_dates_numbers_and_money() -> None:
    at = 1_764_666_300_000  # 2025-12-02 09:05 UTC, 11:05 in Helsinki
    assert format_time("fi", at) == "2.12.2025 klo 11.05"
    assert format_time("en", at) == "2 Dec 2025, 11:05"
    assert format_day("fi", at) == "2.12.2025"
    assert format_number("fi", 1234.5, 1) == f"1{NBSP}234,5"
    assert format_number("en", 1234.5, 1) == "1,234.5"
    assert format_percent_of("fi", 0.125) == f"12,5{NBSP}%"
    assert format_percent_of("en", 0.125) == "12.5%"
    assert format_money("fi", 123_450) == f"1{NBSP}234,50{NBSP}€"
    assert format_money("en", 123_450) == "€1,234.50"


def test_the_language_follows_the_user_then_the_browser() -> None:
    assert pick_locale("fi", "en-GB") == "fi"
    assert pick_locale(None, "sv;q=1, fi;q=0.8, en;q=0.5") == "fi"
    assert pick_locale(None, None) == "en"
