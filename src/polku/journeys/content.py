"""Message content: journey email, SMS and webhook bodies from Jinja2 templates, in Finnish or
English by the person's locale.

A journey `send` step names a shipped template (files in ``journeys/templates/``, one per
name, locale and part: ``abandoned_cart.fi.subject.j2``, ``.txt.j2``, ``.html.j2``,
``.sms.j2``) or gives its content inline, as the journey YAML does::

    content:
      en: {subject: "Hello {{ profile.first_name }}", text: "...", html: "...", sms: "..."}
      fi: {subject: "Hei {{ profile.first_name }}", text: "..."}

Templates run in Jinja2's sandbox (a retailer's marketer writes them, so they must not reach
Python internals), with HTML autoescaped and text left as it is. A value the context lacks
renders empty, so a person without a cart or a store still gets a message. Every email's HTML
sits in one shared layout (``_layout.html.j2``) whose footer carries the unsubscribe link in
the person's language, and every email's text ends with the same footer in words, so no
message can forget it. SMS is held to three concatenated segments, truncated with an
ellipsis. Anything wrong in a template (syntax, a filter given junk) is an `InvalidField`
naming the template and the part, never a half-rendered message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    ChainableUndefined,
    FileSystemLoader,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from polku.commerce.catalog.money import from_minor
from polku.errors import InvalidField

__all__ = [
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

Channel = Literal["email", "sms", "webhook"]

LOCALES: Final = ("en", "fi")
"""The languages shipped templates are written in; anything else gets English."""

DEFAULT_LOCALE: Final = "en"
PARTS: Final = ("subject", "text", "html", "sms")
"""The parts of inline content; shipped files name `text` as ``txt``."""

_FILE_PART: Final = {"subject": "subject", "text": "txt", "html": "html", "sms": "sms"}
TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
LAYOUT: Final = "_layout.html.j2"
_TEXT_FOOTER: Final = "_footer.{locale}.txt.j2"

SMS_LIMIT_GSM: Final = 459
"""Three concatenated SMS segments of GSM-7 text (153 septets each)."""
SMS_LIMIT_UNICODE: Final = 201
"""Three concatenated segments once a character outside GSM-7 forces UCS-2 (67 each)."""

# GSM 03.38: the basic set (one septet) and the extension table (two: escape + char).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED: Final = frozenset("^{}\\[~]|€\f")

_NEEDS: Final[Mapping[str, tuple[str, ...]]] = {
    "email": ("text",),  # html is optional: made from the text when missing
    "sms": ("sms", "text"),
    "webhook": ("text",),
}
"""The parts a channel can be rendered from (any one of them)."""
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")

_MONTHS_EN: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Essive, as a date is said with a weekday: "keskiviikkona 2.12.2026", "viimeistään perjantaina".
_DAYS_FI: Final = (
    "maanantaina",
    "tiistaina",
    "keskiviikkona",
    "torstaina",
    "perjantaina",
    "lauantaina",
    "sunnuntaina",
)
_DAYS_EN: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SYMBOLS: Final = {"EUR": "€", "USD": "$", "GBP": "£"}
_NORDIC_KRONA: Final = {"SEK": "kr", "NOK": "kr", "DKK": "kr"}
_NBSP: Final = "\u00a0"
_DEFAULT_ZONE: Final = "Europe/Helsinki"


def locale_of(traits: Mapping[str, Any] | None, default: str = DEFAULT_LOCALE) -> str:
    """The language to write to a person in: ``fi`` for a `locale` or `language` trait of
    Finnish (``fi``, ``fi-FI``, ``fi_FI``), else ``en``; `default` when neither trait is set."""
    for key in ("locale", "language"):
        value = (traits or {}).get(key)
        if isinstance(value, str) and value.strip():
            return normal_locale(value)
    return normal_locale(default)


def normal_locale(value: str | None) -> str:
    """``fi`` for any Finnish tag, else ``en``."""
    tag = (value or "").strip().replace("_", "-").lower()
    return "fi" if tag == "fi" or tag.startswith("fi-") else "en"


class _Problem(str):
    """A template's problem in English (the words `Content.check` gives), which also carries
    the message id and values a translation needs (as `polku.errors.PolkuError` does)."""

    message_id: str
    params: dict[str, Any]

    def __new__(cls, words: str, message_id: str, **params: Any) -> _Problem:
        made = super().__new__(cls, words)
        made.message_id, made.params = message_id, params
        return made


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message ready for a channel: `subject` (email; empty otherwise), `text` (the
    plain-text email, the SMS, or the webhook body), `html` (email; empty otherwise), the
    `locale` it was written in, and `warnings` (an SMS that had to be shortened)."""

    subject: str
    text: str
    html: str
    locale: str
    warnings: tuple[str, ...] = ()


# -- filters ---------------------------------------------------------------------------------


def _group(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(groups)


def _amount(value: Any, currency: str) -> Decimal:
    """An int is a count of minor units (cents), as Polku stores prices; a Decimal, float or
    string is an amount in the main unit (an event's ``total: 49.9``)."""
    if isinstance(value, bool):
        raise ValueError(f"money expects an amount, got {value!r}")
    if isinstance(value, int):
        return from_minor(value, currency)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip().replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"money expects an amount, got {value[:40]!r}") from None
    raise ValueError(f"money expects an amount, got {type(value).__name__}")


def format_money(value: Any, currency: str | None, locale: str) -> str:
    """`value` in `currency` as a shopper in `locale` reads it: ``49,90 €`` (fi), ``€49.90``
    (en). See `_amount` for what `value` may be; None gives an empty string."""
    if value is None or value == "":
        return ""
    code = (currency or "EUR").strip().upper()
    amount = _amount(value, code)
    places = max(0, -int(amount.as_tuple().exponent)) if amount.is_finite() else 0
    if code in ("EUR", "USD", "GBP", "SEK", "NOK", "DKK"):
        places = 2
    quantized = amount.quantize(Decimal(1).scaleb(-places)) if places else amount
    sign = "-" if quantized < 0 else ""
    whole, _, fraction = f"{abs(quantized):f}".partition(".")
    if locale == "fi":
        number = _group(whole, _NBSP) + ("," + fraction if fraction else "")
        symbol = _SYMBOLS.get(code) or _NORDIC_KRONA.get(code) or code
        return f"{sign}{number}{_NBSP}{symbol}"
    number = _group(whole, ",") + ("." + fraction if fraction else "")
    if code in _SYMBOLS:
        return f"{sign}{_SYMBOLS[code]}{number}"
    return f"{sign}{code}{_NBSP}{number}"


def _moment(value: Any, zone: str) -> datetime | date:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value / 1000, UTC)  # epoch ms, as Polku stores time
    elif isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    else:
        raise ValueError(f"date expects a date, got {type(value).__name__}")
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return moment.astimezone(ZoneInfo(_DEFAULT_ZONE))


def format_date(
    value: Any, locale: str, style: str = "medium", timezone: str = _DEFAULT_ZONE
) -> str:
    """A date (a `date`, `datetime`, ISO-8601 text or epoch milliseconds) in `locale`:
    ``short`` 2.12. / 2 Dec, ``medium`` 2.12.2026 / 2 December 2026, ``long`` with the
    weekday. Aware times are shown in `timezone`. None gives an empty string."""
    if value is None or value == "":
        return ""
    found = _moment(value, timezone)
    day = found.date() if isinstance(found, datetime) else found
    if locale == "fi":
        if style == "short":
            return f"{day.day}.{day.month}."
        medium = f"{day.day}.{day.month}.{day.year}"
        return f"{_DAYS_FI[day.weekday()]} {medium}" if style == "long" else medium
    if style == "short":
        return f"{day.day} {_MONTHS_EN[day.month - 1][:3]}"
    medium = f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{_DAYS_EN[day.weekday()]} {medium}" if style == "long" else medium


def format_time(value: Any, locale: str, timezone: str = _DEFAULT_ZONE) -> str:
    """The time of day: ``18.00`` (fi, as Finnish writes it), ``18:00`` (en)."""
    if value is None or value == "":
        return ""
    found = _moment(value, timezone)
    if not isinstance(found, datetime):
        return ""
    return f"{found.hour}.{found.minute:02d}" if locale == "fi" else f"{found:%H:%M}"


def _locale(ctx: Context) -> str:
    return normal_locale(str(ctx.get("locale") or DEFAULT_LOCALE))


def _zone(ctx: Context) -> str:
    value = ctx.get("timezone")
    return value if isinstance(value, str) and value else _DEFAULT_ZONE


def _given(value: Any) -> Any:
    """None for a value the context lacks, so the filters render it empty."""
    return None if isinstance(value, Undefined) else value


@pass_context
def _money_filter(ctx: Context, value: Any, currency: Any = None) -> str:
    code = _given(currency)
    return format_money(_given(value), str(code) if code else None, _locale(ctx))


@pass_context
def _date_filter(ctx: Context, value: Any, style: str = "medium") -> str:
    return format_date(_given(value), _locale(ctx), style, _zone(ctx))


@pass_context
def _time_filter(ctx: Context, value: Any) -> str:
    return format_time(_given(value), _locale(ctx), _zone(ctx))


def _whole(amount: Decimal, currency: str, locale: str) -> str:
    """An amount as people say a coupon's value: 10 € rather than 10,00 €."""
    text = format_money(amount, currency, locale)
    if amount == amount.to_integral_value():
        text = text.replace(",00", "").replace(".00", "")
    return text


def coupon_benefit(coupon: Any, locale: str, form: str = "") -> str:
    """What a coupon or gift card (as a journey issued it) gives, in words: "15 %:n
    alennus" / "15% off", "10 €:n lahjakortti" / "a €10 gift card". `form="get"` gives the
    Finnish object of "saat" ("15 %:n alennuksen"); English has one form. Its `amount` is
    in the currency's main unit, as the journey step wrote it. Empty for no coupon."""
    if not isinstance(coupon, Mapping):
        return ""
    given = coupon.get("benefit_get" if form == "get" else "benefit") or coupon.get("benefit")
    if isinstance(given, str) and given:
        return given
    fi = locale == "fi"
    giftcard = "giftcard_id" in coupon or coupon.get("kind") == "giftcard"
    percent, amount = coupon.get("percent"), coupon.get("amount")
    if isinstance(percent, (int, float, Decimal)) and not isinstance(percent, bool):
        shown = f"{Decimal(str(percent)).normalize():f}"
        if not fi:
            return f"{shown}% off"
        return f"{shown}{_NBSP}%:n " + ("alennuksen" if form == "get" else "alennus")
    if isinstance(amount, (int, float, Decimal, str)) and not isinstance(amount, bool):
        try:
            value = Decimal(str(amount))
        except ArithmeticError:
            return ""
        money = _whole(value, str(coupon.get("currency") or "EUR"), locale)
        if not fi:
            return f"a {money} gift card" if giftcard else f"{money} off"
        if giftcard:
            return f"{money}:n " + ("lahjakortin" if form == "get" else "lahjakortti")
        return f"{money}:n " + ("alennuksen" if form == "get" else "alennus")
    return ""


@pass_context
def _benefit_filter(ctx: Context, value: Any, form: str = "") -> str:
    return coupon_benefit(_given(value), _locale(ctx), form)


def _plural(count: Any, one: str, many: str) -> str:
    """``{{ n | plural('tuote', 'tuotetta') }}``: the word for `count` of something."""
    try:
        return one if int(count) == 1 else many
    except (TypeError, ValueError):
        return many


# -- SMS -------------------------------------------------------------------------------------


_TO_GSM: Final = str.maketrans(
    {
        "\u00a0": " ",  # the no-break space of Finnish prices
        "\u202f": " ",
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
    }
)


def sms_text(text: str) -> str:
    """`text` on one line, with the typographic characters that GSM-7 lacks (no-break
    spaces, dashes, curly quotes) replaced, so one of them does not cost two thirds of the
    room by forcing UCS-2."""
    return " ".join(text.translate(_TO_GSM).split())


def sms_length(text: str) -> tuple[int, int]:
    """(length as the network counts it, the limit for three segments): septets for GSM-7
    text, UTF-16 units once any character needs UCS-2."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        return sum(2 if c in _GSM_EXTENDED else 1 for c in text), SMS_LIMIT_GSM
    return len(text.encode("utf-16-le")) // 2, SMS_LIMIT_UNICODE


def limit_sms(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` within three segments, and a warning when it had to be shortened. A link at the
    end is kept whole (a cut link is worse than a cut sentence)."""
    length, limit = sms_length(text)
    if length <= limit:
        return text, ()
    body, _, last = text.rpartition(" ")
    keep = last if last.startswith(("http://", "https://")) and body else ""
    if not keep:
        body = text
    gsm = limit == SMS_LIMIT_GSM
    ellipsis = "..." if gsm else "…"  # "…" is not GSM-7: it would halve the room
    tail = f"{ellipsis} {keep}" if keep else ellipsis
    cut = body
    while cut and sms_length(cut.rstrip() + tail)[0] > limit:
        cut = cut[: -max(1, (sms_length(cut + tail)[0] - limit) // 2)]
    space = cut.rfind(" ", max(0, len(cut) - 20))
    if space > 0:  # end on a whole word when one ends close by
        cut = cut[:space]
    shortened = cut.rstrip(" ,.;:-") + tail
    warning = (
        f"sms: {length} characters is more than three segments ({limit}); "
        f"shortened to {sms_length(shortened)[0]}."
    )
    return shortened, (warning,)


# -- the environment -------------------------------------------------------------------------


def _untracked(url: Any) -> str:
    """`track` for a context that brings none (a preview): the URL as it is."""
    return url.strip() if isinstance(url, str) else ""


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


def _one_line(text: str) -> str:
    """A subject on one line; no-break spaces (Finnish prices: 49,90 €) are kept."""
    return re.sub(r"[ \t\r\n\f\v]+", " ", text).strip()


def _paragraphs(text: str) -> Markup:
    """Plain text as HTML paragraphs, for inline content that gives no html part."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.splitlines()))
        for b in blocks
    )


class Content:
    """Renders journey messages (see the module doc). One instance serves every journey and
    thread: Jinja2 environments are thread-safe once built, and compiled templates are
    cached."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = templates_dir or TEMPLATES_DIR
        # The shipped files are read once: a render must not list a folder per message.
        self._files = frozenset(path.name for path in self.templates_dir.glob("*.j2"))
        self._names = tuple(
            sorted({f.split(".", 1)[0] for f in self._files if not f.startswith("_")})
        )
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(self.templates_dir)),
            autoescape=_autoescape,
            undefined=ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self.env.filters["money"] = _money_filter
        self.env.filters["date"] = _date_filter
        self.env.filters["time"] = _time_filter
        self.env.filters["plural"] = _plural
        self.env.filters["benefit"] = _benefit_filter
        self.env.filters["paragraphs"] = _paragraphs
        self._inline: Callable[[str, bool], Template] = functools.lru_cache(maxsize=512)(
            self._compile
        )

    # -- what is shipped ---------------------------------------------------------------------

    def names(self) -> list[str]:
        """The shipped template names (``abandoned_cart``, ...)."""
        return list(self._names)

    def _file(self, name: str, locale: str, part: str) -> str | None:
        """The file of `name`'s `part` in `locale`, else in English; None when neither."""
        for candidate in (locale, DEFAULT_LOCALE):
            file = f"{name}.{candidate}.{_FILE_PART[part]}.j2"
            if file in self._files:
                return file
        return None

    # -- checking ----------------------------------------------------------------------------

    def check(
        self, template: str | Mapping[str, Any], channel: str | None = None
    ) -> list[tuple[str, str]]:
        """The problems of a template name or inline content, as (part, message) pairs, for
        the journey parser to report against its step (an empty list: it will render).
        Checks names, shape, syntax and, given the step's `channel`, that the template has a
        part for it; not values, which only exist at send time."""
        if isinstance(template, str):
            if not _NAME.fullmatch(template) or template not in self.names():
                known = ", ".join(self.names())
                return [
                    (
                        "",
                        _Problem(
                            f"There is no shipped template {template[:80]!r}; use one of {known}.",
                            "tp_unknown",
                            template=template[:80],
                            known=known,
                        ),
                    )
                ]
            # A shipped email text is too long for a text message: SMS needs its own part.
            wanted = ("sms",) if channel == "sms" else _NEEDS.get(channel or "", ())
            if wanted and all(self._file(template, DEFAULT_LOCALE, p) is None for p in wanted):
                parts = " or ".join(wanted)
                words = f"The template {template!r} has no {parts} part for {channel}."
                return [
                    (
                        "",
                        _Problem(
                            words,
                            "tp_missing_part",
                            template=template,
                            parts="/".join(wanted),
                            channel=channel,
                        ),
                    )
                ]
            return []
        if not isinstance(template, Mapping):
            words = "content must be an object of languages, e.g. {en: {...}}."
            return [("content", _Problem(words, "tp_content_not_mapping"))]
        problems: list[tuple[str, str]] = []
        by_locale = self._inline_locales(template)
        if not by_locale:
            words = "content has no language: give en (and fi) with their parts."
            return [("content", _Problem(words, "tp_no_language"))]
        for locale, parts in by_locale.items():
            if not isinstance(parts, Mapping):
                words = f"content.{locale} must be an object of parts."
                problems.append((locale, _Problem(words, "tp_locale_not_mapping", locale=locale)))
                continue
            for part, source in parts.items():
                where = f"{locale}.{part}"
                if part not in PARTS:
                    words = f"Unknown part {part!r}; use {', '.join(PARTS)}."
                    known = ", ".join(PARTS)
                    problems.append(
                        (where, _Problem(words, "tp_unknown_part", part=str(part), known=known))
                    )
                elif not isinstance(source, str):
                    words = f"{where} must be text (a template)."
                    problems.append((where, _Problem(words, "tp_part_not_text", where=where)))
                else:
                    try:
                        self.env.parse(source)
                    except TemplateSyntaxError as exc:
                        words = f"line {exc.lineno}: {exc.message}"
                        problems.append(
                            (
                                where,
                                _Problem(
                                    words, "tp_syntax", line=exc.lineno, error=exc.message or ""
                                ),
                            )
                        )
            wanted = _NEEDS.get(channel or "", ("text", "sms", "html"))
            if not any(isinstance(parts.get(p), str) for p in wanted):
                needed = " or ".join(wanted)
                words = f"content.{locale} needs {needed} for {channel}."
                problems.append(
                    (
                        locale,
                        _Problem(
                            words,
                            "tp_needs_part",
                            locale=locale,
                            parts="/".join(wanted),
                            channel=channel,
                        ),
                    )
                )
        return problems

    @staticmethod
    def _inline_locales(template: Mapping[str, Any]) -> dict[str, Any]:
        """Inline content by language; a flat {subject, text, ...} is one text for all."""
        if template and all(key in PARTS for key in template):
            return {DEFAULT_LOCALE: template}
        return {str(key): value for key, value in template.items()}

    # -- rendering ---------------------------------------------------------------------------

    def _compile(self, source: str, html: bool) -> Template:
        """Inline content compiled under a name ending as its part does, so HTML is
        autoescaped exactly like a shipped ``.html.j2`` file; HTML without a layout of its
        own goes into the shared one."""
        if html and "{% extends" not in source and "<html" not in source.lower():
            source = f'{{% extends "{LAYOUT}" %}}{{% block body %}}{source}{{% endblock %}}'
        name = "inline.html.j2" if html else "inline.txt.j2"
        code = self.env.compile(source, name=name)
        return self.env.template_class.from_code(self.env, code, self.env.make_globals(None))

    def _fail(self, where: str, exc: Exception) -> InvalidField:
        if isinstance(exc, TemplateSyntaxError):
            return InvalidField(
                f"The template {where} has a syntax error on line {exc.lineno}: {exc.message}",
                field=where,
                code="invalid_template",
                hint="Fix the Jinja2 syntax: close every {{ ... }}, and every {% if %} with "
                "{% endif %}.",
                message_id="template_syntax",
                params={"where": where, "line": exc.lineno or 0, "error": exc.message or ""},
            )
        if isinstance(exc, TemplateNotFound):
            return InvalidField(
                f"The template {where} includes or extends {exc.name!r}, which does not exist.",
                field=where,
                code="invalid_template",
                hint='Extend the shipped layout as "_layout.html.j2", or remove the include.',
                message_id="template_missing_include",
                params={"where": where, "name": exc.name},
            )
        return InvalidField(
            f"The template {where} failed while rendering: {exc}",
            field=where,
            code="invalid_template",
            hint="Check the filters' arguments, e.g. {{ line.price | money(line.currency) }}; "
            "a value the message lacks renders empty, but a wrong type fails.",
            message_id="template_render_failed",
            params={"where": where, "error": str(exc)},
        )

    def _run(self, template: Template, where: str, values: Mapping[str, Any]) -> str:
        try:
            return template.render(values)
        except (TemplateError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise self._fail(where, exc) from exc

    def _part(
        self,
        template: str | Mapping[str, Any],
        locale: str,
        part: str,
        values: Mapping[str, Any],
        *,
        strict: bool = False,
    ) -> str | None:
        """One part rendered, or None when the template has no such part; inline content
        falls back to English, then any language, unless `strict`."""
        if isinstance(template, str):
            file = self._file(template, locale, part)
            if file is None:
                return None
            where = file.removesuffix(".j2")
            try:
                compiled = self.env.get_template(file)
            except TemplateError as exc:
                raise self._fail(where, exc) from exc
            return self._run(compiled, where, values)
        by_locale = self._inline_locales(template)
        for candidate in (locale,) if strict else (locale, DEFAULT_LOCALE, *by_locale):
            parts = by_locale.get(candidate)
            if isinstance(parts, Mapping) and isinstance(parts.get(part), str):
                where = f"content.{candidate}.{part}"
                try:
                    compiled = self._inline(parts[part], part == "html")
                except TemplateError as exc:
                    raise self._fail(where, exc) from exc
                return self._run(compiled, where, values)
        return None

    def _content_locale(self, template: Mapping[str, Any], locale: str, channel: str) -> str:
        """The language inline content is written in for this person: theirs when it has a
        part for the channel, else English, else the first that has one (so that the body of
        one message never mixes two languages)."""
        by_locale = self._inline_locales(template)
        wanted = _NEEDS.get(channel, ("text",))
        for candidate in (locale, DEFAULT_LOCALE, *by_locale):
            parts = by_locale.get(candidate)
            if isinstance(parts, Mapping) and any(isinstance(parts.get(p), str) for p in wanted):
                return normal_locale(candidate) if candidate in LOCALES else candidate
        return locale

    def _footer(self, locale: str, values: Mapping[str, Any]) -> str:
        file = _TEXT_FOOTER.format(locale=locale)
        compiled = self.env.get_template(file)
        return self._run(compiled, file.removesuffix(".j2"), values).strip()

    def render(
        self,
        template: str | Mapping[str, Any],
        channel: Channel,
        context: Mapping[str, Any],
    ) -> Rendered:
        """The message of `template` (a shipped name or inline content) for `channel`, in the
        context's `locale` (else the profile's traits, else English). Raises `InvalidField`
        naming the template and part when it cannot be rendered."""
        if isinstance(template, str) and template not in self._names:
            raise InvalidField(
                f"There is no shipped message template {template[:80]!r}.",
                field="template",
                code="unknown_template",
                hint=f"Use one of {', '.join(self.names())}, or give the content inline.",
                params={"template": template[:80], "templates": ", ".join(self.names())},
            )
        profile = context.get("profile")
        traits = profile.get("traits") if isinstance(profile, Mapping) else None
        given = context.get("locale")
        locale = (
            normal_locale(given)
            if isinstance(given, str) and given
            else locale_of(traits if isinstance(traits, Mapping) else None)
        )
        inline = not isinstance(template, str)
        if not isinstance(template, str):
            locale = self._content_locale(template, locale, channel)
        values = {"track": _untracked, "unsubscribe_url": "", **context, "locale": locale}
        label = template if isinstance(template, str) else "content"
        if channel == "sms":
            found = self._part(template, locale, "sms", values, strict=True)
            if found is None and inline:
                found = self._part(template, locale, "text", values, strict=True)
            if found is None:
                raise self._missing(label, "sms")
            text, warnings = limit_sms(sms_text(found))
            return Rendered("", text, "", locale, warnings)
        subject = _one_line(self._part(template, locale, "subject", values) or "")
        text = (self._part(template, locale, "text", values, strict=True) or "").strip()
        if channel == "webhook":
            if not text:
                raise self._missing(label, "text")
            return Rendered(subject, text, "", locale)
        html = self._part(template, locale, "html", values, strict=True)
        if html is None:
            if not text:
                raise self._missing(label, "text")
            html = self._run(
                self._inline("{{ body | paragraphs }}", True),
                f"{label}.{locale}.html",
                {**values, "body": text},
            )
        if not text:
            raise self._missing(label, "text")
        footer = self._footer(normal_locale(locale), values)
        return Rendered(subject, f"{text}\n\n-- \n{footer}", html.strip(), locale)

    @staticmethod
    def _missing(label: str, part: str) -> InvalidField:
        return InvalidField(
            f"The template {label} has no {part} part for this channel.",
            field=f"{label}.{part}",
            code="invalid_template",
            hint="Give the part (for SMS: sms or text; for email: text, and subject and html "
            "where wanted), or send on a channel the template is written for.",
            message_id="template_missing_part",
            params={"label": label, "part": part},
        )
