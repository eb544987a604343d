"""Card numbers never enter Polku: find what looks like a payment card number in an event, so
collection can refuse the event before it reaches the log.

Events carry a payment method *type* (``card``, ``cash``, ``mobile``, ``gift_card``) or a
payment provider's token, never the card's number (the PAN). A string (or integer) value
looks like a card number when it holds a run of 13-19 digits that

- is written as cards are: all digits (``4111111111111111``), or in groups split by single
  spaces or dashes, of four digits each but the last (``4111 1111 1111 1111``) or in the
  4-6-5 and 4-6-4 layout of American Express and Diners Club (``3782 822463 10005``);
- stands alone: no letter, digit, ``+``, ``_`` or decimal point right before it, no letter
  or digit right after it (so ``+358401234567`` is a phone, ``0.12345678901234567`` a
  number, ``INV4111111111111111`` an id);
- starts and is as long as a card network's numbers do (Visa 4, 16 or 19 digits;
  Mastercard 51-55 and 2221-2720, 16; American Express 34 and 37, 15; Discover, Diners
  Club, JCB, UnionPay, Maestro, Mir). Thirteen digits is an EAN barcode, not a card:
  13-digit Visa numbers are no longer issued;
- passes the Luhn check, as every card number does.

Values under keys that name the retailer's own identifiers (`sku`, `order_id`,
`receipt_id`, `loyalty_card`, ...) are not looked at: loyalty and till numbers are often
Luhn numbers in the same ranges, and no integration puts a card number there.

The ingest path checks tens of thousands of events a second, so the common case is three C
calls and no regular expression: serialise the parts that carry what people typed
(properties, traits, the page) with orjson, map every byte to "digit" or "other" with
spaces and dashes dropped (`bytes.translate`), and look for 13 digits in a row. Only an
event that has them is walked, value by value, with the exact pattern, to name the field and
to mask the number in the copy kept as a dead letter.

A leaf module: it imports nothing from Polku.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "CODE",
    "EXEMPT_KEYS",
    "CardNumberFound",
    "card_network",
    "find_card_number",
    "mask_card_numbers",
]

CODE: Final = "card_number"
"""The rejection code collection gives an event with a card number in it."""

EXEMPT_KEYS: Final = frozenset(
    {
        "sku",
        "product_id",
        "variant_id",
        "ean",
        "gtin",
        "upc",
        "barcode",
        "order_id",
        "receipt_id",
        "checkout_id",
        "cart_id",
        "transaction_id",
        "loyalty_card",
        "loyalty_card_id",
        "loyaltyCard",
        "loyaltyCardId",
        "pos_customer_id",
        "posCustomerId",
    }
)
"""Keys whose values are the retailer's own identifiers, never a payment card number."""

_MIN_DIGITS: Final = 13
_MAX_DIGITS: Final = 19
# Every byte becomes "d" (a digit) or "x"; spaces and dashes are dropped first, so a card
# printed in groups becomes a run of d's too.
_CLASSES: Final = bytes(0x64 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_SEPARATOR_BYTES: Final = b" -"
_ENOUGH: Final = b"d" * _MIN_DIGITS
# A run of 13-19 digits with single spaces or dashes between them, standing alone.
_RUN: Final = re.compile(
    r"(?<![0-9A-Za-z+_.])(?<![0-9][ -])"
    r"[0-9](?:[ -]?[0-9]){12,18}"
    r"(?![0-9A-Za-z_])(?![ -][0-9])(?!\.[0-9])"
)
_GROUPS: Final = re.compile(r"[ -]")
_WIDE_LAYOUTS: Final = ((4, 6, 5), (4, 6, 4))  # American Express, Diners Club


def luhn_valid(digits: str) -> bool:
    """Whether `digits` passes the Luhn (mod 10) check that every card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_network(digits: str) -> str | None:
    """The card network whose numbers start and are as long as `digits`, or None."""
    n = len(digits)
    if not _MIN_DIGITS <= n <= _MAX_DIGITS or not digits.isdigit():
        return None
    first2, first3, first4 = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":
        return "Visa" if n in (16, 19) else None
    if 51 <= first2 <= 55 or 2221 <= first4 <= 2720:
        return "Mastercard" if n == 16 else None
    if first2 in (34, 37):
        return "American Express" if n == 15 else None
    if 2200 <= first4 <= 2204:
        return "Mir" if n >= 16 else None
    if 3528 <= first4 <= 3589:
        return "JCB" if n >= 16 else None
    if 300 <= first3 <= 305 or first2 in (36, 38, 39):
        return "Diners Club" if n >= 14 else None
    if first4 == 6011 or 644 <= first3 <= 649 or first2 == 65:
        return "Discover" if n >= 16 else None
    if first2 == 62:
        return "UnionPay" if n >= 16 else None
    if first2 in (50, 56, 57, 58) or digits[0] == "6":
        return "Maestro" if n >= 16 else None
    return None


def _printed_as_card(run: str) -> bool:
    """Whether a run's digit groups are laid out as card numbers are printed."""
    groups = tuple(len(g) for g in _GROUPS.split(run))
    if len(groups) == 1:
        return True
    if groups in _WIDE_LAYOUTS:
        return True
    return all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4


def _cards_in(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """Each card number in `text`, with its network."""
    for run in _RUN.finditer(text):
        found = run.group()
        if not _printed_as_card(found):
            continue
        digits = found.replace(" ", "").replace("-", "")
        network = card_network(digits)
        if network is not None and luhn_valid(digits):
            yield run, network


@dataclass(frozen=True, slots=True)
class CardNumberFound:
    """A card number in an event: where, whose network, and the event with it masked."""

    field: str  # path from the message root, e.g. "properties.payment.card"
    network: str
    last4: str
    redacted: Any  # the message with every card number masked ("**** **** **** 1111")

    @property
    def message(self) -> str:
        return (
            f"{self.field} holds what looks like a payment card number ({self.network}, "
            f"ending {self.last4}); Polku never stores card numbers, so the event was not "
            "stored. Send the payment method type (card, mobile, gift_card, ...) or your "
            "payment provider's token instead."
        )


def _scanned(message: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The parts of a message that carry what customers, staff and tills typed."""
    found = [(key, message[key]) for key in ("properties", "traits") if key in message]
    context = message.get("context")
    if isinstance(context, Mapping):
        found += [(f"context.{key}", context[key]) for key in ("traits", "page") if key in context]
    return found


def _may_hold_card(values: list[Any]) -> bool:
    """The fast test: False when the values hold no 13 digits in a row anywhere."""
    try:
        blob = orjson.dumps(values)
    except (orjson.JSONEncodeError, TypeError):
        return True  # too deep for orjson (collection refuses it anyway): walk it
    return _ENOUGH in blob.translate(_CLASSES, _SEPARATOR_BYTES)


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _first(root: str, value: Any) -> tuple[str, str, str] | None:
    """(field, network, last four digits) of the first card number under `value`."""
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, current = stack.pop()
        if isinstance(current, Mapping):
            children = [
                (f"{path}.{key}", child)
                for key, child in current.items()
                if isinstance(child, (Mapping, list)) or key not in EXEMPT_KEYS
            ]
            stack.extend(reversed(children))
        elif isinstance(current, list):
            stack.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(current)]))
        else:
            text = _text_of(current)
            if text is None or len(text) < _MIN_DIGITS:
                continue
            for run, network in _cards_in(text):
                return path, network, run.group().replace(" ", "").replace("-", "")[-4:]
    return None


def _mask(text: str) -> str:
    """`text` with every card number's digits but the last four replaced by ``*``."""
    pieces: list[str] = []
    done = 0
    for run, _ in _cards_in(text):
        keep = run.end()
        for _ in range(4):  # keep the last four digits (and what separates them)
            keep -= 1
            while not text[keep].isdigit():
                keep -= 1
        hidden = "".join("*" if c.isdigit() else c for c in text[run.start() : keep])
        pieces += [text[done : run.start()], hidden]
        done = keep
    return "".join([*pieces, text[done:]])


def mask_card_numbers(data: bytes) -> bytes:
    """`data` (any text, e.g. a rejected request's raw body) with every card number's digits
    but the last four replaced by ``*``; unchanged, and cheaply, when it holds none."""
    if sum(1 for b in data if 48 <= b <= 57) < _MIN_DIGITS:
        return data
    text = data.decode("utf-8", "replace")
    masked = _mask(text)
    return data if masked == text else masked.encode()


def _redact(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with every card number masked, wherever it is."""
    if depth > 300:
        return "(nested too deeply to keep)"
    if isinstance(value, Mapping):
        return {key: _redact(child, depth + 1) for key, child in value.items()}
    if isinstance(value, list):
        return [_redact(item, depth + 1) for item in value]
    text = _text_of(value)
    if text is None or len(text) < _MIN_DIGITS:
        return value
    masked = _mask(text)
    return value if masked == text else masked


def find_card_number(message: Mapping[str, Any]) -> CardNumberFound | None:
    """The first card number in `message`'s properties, traits (also `context.traits`) or
    page, or None: the common case, decided without a regular expression."""
    context = message.get("context")
    values = [message.get("properties"), message.get("traits")]
    if isinstance(context, Mapping):
        values += (context.get("traits"), context.get("page"))
    if not _may_hold_card(values):
        return None
    for root, value in _scanned(message):
        found = _first(root, value)
        if found is not None:
            field, network, last4 = found
            return CardNumberFound(field, network, last4, _redact(message))
    return None
