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

The domain packages raise their errors in English (the API's words); `explain` says the same
in the user's language from the key `err_<message_id>`, filling in the error's `params`.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from polku.errors import PolkuError

__all__ = [
    "LOCALES",
    "catalogue",
    "channel_name",
    "explain",
    "explain_hint",
    "format_day",
    "format_money",
    "format_number",
    "format_percent_of",
    "format_time",
    "pick_locale",
    "plural",
    "send_status",
    "text",
    "trace_kind",
    "trace_outcome",
    "trace_reason",
    "trace_step",
    "verdict",
    "word",
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


def _value(locale: str, name: str, value: object, params: dict[str, object]) -> str:
    """One value an error names, as `locale` writes it: a time (`*_at`, epoch ms), an amount
    (`*_minor` with a `currency`), a number, or a word the catalogue has (`errval_<name>_<value>`:
    a status, an action), else the value as it is (an id, a SKU)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if name.endswith("_at"):
            return format_time(locale, value)
        if name.endswith("_minor") and isinstance(params.get("currency"), str):
            return format_money(locale, value, str(params["currency"]))
        return format_number(locale, value)
    key = f"errval_{name}_{value}"
    if key in catalogue():
        return catalogue()[key][locale]
    return str(value)


def _filled(locale: str, key: str, error: PolkuError) -> str | None:
    entry = catalogue().get(key)
    if entry is None:
        return None
    values = {n: _value(locale, n, v, error.params) for n, v in error.params.items()}
    try:
        return entry[locale].format(**values)
    except (KeyError, IndexError):  # a value the error did not carry: the tests catch it
        return None


def explain(locale: str, error: PolkuError) -> str:
    """What went wrong, in `locale`: the catalogue's `err_<message_id>` with the error's
    values; the error's own (English) message only for an error the catalogue lacks."""
    return _filled(locale, "err_" + error.message_id, error) or error.message


def explain_hint(locale: str, error: PolkuError) -> str | None:
    """What to do about it, in `locale` (`errhint_<message_id>`); in English the error's own
    hint when the catalogue has none, in Finnish then nothing (no English half-sentence)."""
    found = _filled(locale, "errhint_" + error.message_id, error)
    if found is not None:
        return found
    return error.hint if locale == "en" else None


def plural(locale: str, key: str, count: int, **values: object) -> str:
    """`key_one` for a count of 1, else `key_other` (the rule of both Finnish and English
    for whole numbers), with `{count}` written as `locale` writes numbers."""
    form = "_one" if count == 1 else "_other"
    return text(locale, key + form, count=format_number(locale, count), **values)


def word(locale: str, prefix: str, value: object) -> str:
    """The catalogue's word `prefix + value` in `locale`, else the value as it is (a step's
    or a branch's own name)."""
    key = f"{prefix}{value}"
    return catalogue()[key][locale] if key in catalogue() else str(value)


def trace_reason(locale: str, reason: object, detail: Mapping[str, Any] | None = None) -> str:
    """Why a journey's step held or dropped a message, or ended an enrollment, in `locale`:
    no consent, frequency cap, quiet hours (until when), suppressed by a staff claim, ..."""
    if not reason:
        return ""
    value = str(reason)
    if value.startswith("exit:"):
        return text(locale, "trace_reason_exit_on", event=value[len("exit:") :])
    until = (detail or {}).get("until")
    if value == "quiet_hours" and isinstance(until, int) and not isinstance(until, bool):
        return text(locale, "trace_reason_quiet_hours_until", until=format_time(locale, until))
    return word(locale, "trace_reason_", value)


def trace_kind(locale: str, decision: Mapping[str, Any]) -> str:
    """What a decision of a journey's trace was about (entry, wait, send ...) in `locale`."""
    return word(locale, "trace_kind_", decision.get("kind", ""))


def trace_outcome(locale: str, decision: Mapping[str, Any]) -> str:
    """What came of a decision of a journey's trace in `locale`, and why when it says
    (`outcome` and `detail.reason` are codes, which the API keeps as they are)."""
    detail = decision.get("detail") or {}
    if decision.get("kind") == "end":
        return trace_reason(locale, decision.get("outcome"))
    outcome = word(locale, "trace_outcome_", decision.get("outcome", ""))
    reason = trace_reason(locale, detail.get("reason"), detail)
    return f"{outcome} ({reason})" if reason else outcome


def trace_step(locale: str, decision: Mapping[str, Any]) -> str:
    """One decision of a journey's trace in `locale`: `Send: not sent (no consent ...)`."""
    return f"{trace_kind(locale, decision)}: {trace_outcome(locale, decision)}"


def channel_name(locale: str, channel: object) -> str:
    """A channel (email, sms, web ...) in `locale`, or its own name for a retailer's own."""
    return word(locale, "cust_channel_", channel)


def send_status(locale: str, status: object) -> str:
    """A journey message's status (queued, held, sent, dropped, failed ...) in `locale`."""
    return word(locale, "trace_outcome_", status)


def verdict(locale: str, explained: Mapping[str, Any]) -> str:
    """The one-line verdict of `polku.journeys.queries.explain` in `locale`, from its
    `verdict_code` and `verdict_params`; its English `verdict` only if it has no code."""
    code = explained.get("verdict_code")
    if not code or (
        f"verdict_{code}" not in catalogue() and f"verdict_{code}_one" not in catalogue()
    ):
        return str(explained.get("verdict", ""))
    params = dict(explained.get("verdict_params") or {})
    values: dict[str, object] = {}
    for name, value in params.items():
        if name == "channel":
            values[name] = channel_name(locale, value)
        elif name == "reason":
            values[name] = trace_reason(locale, value)
        elif name in ("status", "outcome"):
            values[name] = word(locale, "trace_outcome_", value)
        elif name == "kind":
            values[name] = word(locale, "trace_kind_", value)
        elif name == "waiting":
            values[name] = word(locale, "trace_waiting_", value)
        elif name == "events":
            values[name] = text(locale, "or_join").join(str(v) for v in value)
        elif name != "count":
            values[name] = str(value)
    if "count" in params:
        return plural(locale, f"verdict_{code}", int(params["count"]), **values)
    return text(locale, f"verdict_{code}", **values)
