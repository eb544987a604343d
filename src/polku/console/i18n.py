"""The console's words in Finnish and English, the language of a request, and dates,
numbers and money as each language writes them.

The words are message catalogues, one TOML file per part of the console
(`messages/<area>.toml`, each `[key]` with `en` and `fi`), so that translators edit data,
not code, and each part of the console owns its file. All files are read once; a key in two
files, or a key without both languages, is an error at start-up (and in the tests), never a
key shown to a user. Formatting of dates, numbers and money follows the CLDR data of Babel
(`1 234,50 €` and `2.12.2026` in Finnish, `€1,234.50` and `2 Dec 2026` in English). The
language is the user's setting, else the browser's `Accept-Language` (Finnish or English, by
quality), else English.
"""

from __future__ import annotations

import functools
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_currency, format_decimal, format_percent

__all__ = [
    "LOCALES",
    "catalogue",
    "format_day",
    "format_money",
    "format_number",
    "format_percent_of",
    "format_time",
    "pick_locale",
    "text",
]

LOCALES: Final = ("fi", "en")
DEFAULT_LOCALE: Final = "en"
MESSAGES_DIR: Final = Path(__file__).parent / "messages"
# Times are shown in Finnish time until workspaces carry a time zone of their own.
_ZONE: Final = ZoneInfo("Europe/Helsinki")
_BABEL: Final = {"fi": "fi_FI", "en": "en_GB"}


class CatalogueError(ValueError):
    """A message catalogue that would show a user a key or half a translation."""


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every message key → {locale: text}, read once from `messages/*.toml`."""
    found: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for path in sorted(MESSAGES_DIR.glob("*.toml")):
        with path.open("rb") as file:
            try:
                entries = tomllib.load(file)
            except tomllib.TOMLDecodeError as exc:
                raise CatalogueError(f"{path.name}: {exc}") from exc
        for key, entry in entries.items():
            if key in found:
                raise CatalogueError(f"{path.name}: [{key}] is also in {origin[key]}")
            if not isinstance(entry, dict) or any(
                not isinstance(entry.get(loc), str) or not entry[loc] for loc in LOCALES
            ):
                raise CatalogueError(f"{path.name}: [{key}] needs both en and fi as text")
            found[key], origin[key] = {loc: entry[loc] for loc in LOCALES}, path.name
    return found


def text(locale: str, key: str, **values: object) -> str:
    """The message `key` in `locale`, with `{name}` placeholders filled from `values`
    (an unknown key raises `KeyError`: the tests catch it, users never see a raw key)."""
    message = catalogue()[key][locale]
    return message.format(**values) if values else message


def pick_locale(user_locale: str | None, accept_language: str | None) -> str:
    """The user's own setting, else the best of Finnish and English the browser accepts."""
    if user_locale in LOCALES:
        return user_locale
    best, best_q = DEFAULT_LOCALE, -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in LOCALES:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        # Equal qualities keep the browser's order.
        if quality > best_q or (quality == best_q and position == 0):
            best, best_q = language, quality
    return best


def _moment(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(_ZONE)


def format_time(locale: str, at_ms: int) -> str:
    """An epoch-ms time in Finnish time: `2.12.2026 klo 9.05` or `2 Dec 2026, 09:05`."""
    moment = _moment(at_ms)
    if locale == "fi":
        return _babel_datetime(moment, "d.M.yyyy 'klo' H.mm", locale=_BABEL[locale])
    return _babel_datetime(moment, "d MMM yyyy, HH:mm", locale=_BABEL[locale])


def format_day(locale: str, at_ms: int) -> str:
    """The day of an epoch-ms time in Finnish time: `2.12.2026` or `2 Dec 2026`."""
    pattern = "d.M.yyyy" if locale == "fi" else "d MMM yyyy"
    return _babel_date(_moment(at_ms).date(), pattern, locale=_BABEL[locale])


def format_number(locale: str, value: float | int, digits: int = 0) -> str:
    """`1 234,5` in Finnish, `1,234.5` in English, with at most `digits` decimals."""
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return str(format_decimal(value, pattern, locale=_BABEL[locale]))


def format_percent_of(locale: str, fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage: `12,5 %` in Finnish, `12.5%` in English."""
    pattern = (
        "#,##0" + ("." + "0" * digits if digits else "") + ("\u00a0%" if locale == "fi" else "%")
    )
    return str(format_percent(fraction, pattern, locale=_BABEL[locale]))


def format_money(locale: str, minor_units: int, currency: str = "EUR") -> str:
    """An amount in minor units (cents): `1 234,50 €` in Finnish, `€1,234.50` in English."""
    return str(format_currency(minor_units / 100, currency, locale=_BABEL[locale]))
