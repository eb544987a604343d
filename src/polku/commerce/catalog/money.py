"""Prices as exact decimals: ISO 4217 currencies, their minor units, and parsing a price sent
as a JSON number or a string (``12.90``, ``12,90``) without ever going through a float's
rounding.

A price is stored as an integer count of the currency's minor unit (cents for EUR, yen for
JPY, fils for KWD, per ISO 4217's exponent), so sums and comparisons are exact on SQLite and
PostgreSQL alike, and shown as a `Decimal` with exactly that many places.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from iso4217 import Currency

from polku.errors import InvalidField

__all__ = [
    "MAX_PRICE",
    "currency_code",
    "from_minor",
    "minor_digits",
    "price_minor",
]

MAX_PRICE: Final = Decimal(10) ** 12
"""No price is this large (a trillion units of any currency): a larger one is a typo."""


@functools.cache
def _digits() -> dict[str, int]:
    # Funds, precious metals and test codes (XAU, XXX) have no minor unit: not for prices.
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def minor_digits(code: str) -> int:
    """Decimal places of `code`'s minor unit (2 for EUR, 0 for JPY, 3 for KWD)."""
    return _digits()[code]


def currency_code(value: Any, field: str) -> str:
    """`value` as an ISO 4217 currency code in upper case; InvalidField otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(
            f"{field} must be a three-letter ISO 4217 currency code such as EUR.",
            field=field,
            code="invalid_currency",
            hint="Send the code as a string, e.g. EUR, SEK, USD.",
        )
    code = value.strip().upper()
    if code not in _digits():
        raise InvalidField(
            f"Unknown currency {value.strip()[:20]!r} in {field}.",
            field=field,
            code="unknown_currency",
            hint="Use an ISO 4217 code of a currency in circulation, e.g. EUR, SEK, NOK, USD.",
        )
    return code


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidField(
            f"{field} must be a number such as 49.90.",
            field=field,
            code="invalid_price",
            hint='Send the price as a JSON number or a string such as "49.90".',
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidField(
                f"{field} must be a finite number.", field=field, code="invalid_price"
            )
        # repr gives the shortest text that reads back as this float: what the sender typed.
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a decimal comma, as Finnish spreadsheets write it
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = Decimal("NaN")
        if text and number.is_finite():
            return number
    raise InvalidField(
        f"{field} {str(value)[:40]!r} is not a price.",
        field=field,
        code="invalid_price",
        hint="Send a number with a decimal point, e.g. 49.90 (no currency sign or "
        "thousands separator).",
    )


def price_minor(value: Any, currency: str, field: str) -> int:
    """The price `value` (a JSON number, or a string such as ``"49.90"`` or ``"49,90"``) in
    minor units of `currency`; InvalidField for a negative, oversized or over-precise price."""
    number = _decimal(value, field)
    if number < 0:
        raise InvalidField(
            f"{field} {number} is negative.",
            field=field,
            code="negative_price",
            hint="Send the price as 0 or more; a discount is a lower price, not a negative one.",
        )
    if number >= MAX_PRICE:
        raise InvalidField(
            f"{field} {number} is too large to be a price.",
            field=field,
            code="invalid_price",
            hint="Send the price in the currency's main unit (euros, not cents).",
        )
    digits = minor_digits(currency)
    scaled = number.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise InvalidField(
            f"{field} {number} has more decimals than {currency} has ({digits}).",
            field=field,
            code="invalid_price",
            hint=f"Round the price to {digits} decimal places.",
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """`minor` units of `currency` as a Decimal with the currency's number of places.

    A code that ISO 4217 has since withdrawn (a price stored in it before) reads with 2."""
    digits = _digits().get(currency, 2)
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))
