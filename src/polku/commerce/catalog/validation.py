"""Check a product or a variant as sent (an API body, a CSV row, a JSON line) and turn it
into the typed input the actions write. The API and the importer share this one code path,
so a value refused by one is refused by the other with the same code, field and hint.

Each problem is an `InvalidField` naming the field by its path in the product as JSON
(``variants[2].price``), with a stable code: ``missing_field``, ``invalid_field``,
``unknown_field``, ``invalid_price``, ``negative_price``, ``invalid_currency``,
``unknown_currency``, ``unsupported_language``, ``duplicate_sku``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from polku.commerce.catalog.analysis import LANGUAGES
from polku.commerce.catalog.money import currency_code, price_minor
from polku.errors import InvalidField

__all__ = [
    "PRODUCT_FIELDS",
    "VARIANT_FIELDS",
    "ProductInput",
    "VariantInput",
    "check_code",
    "check_product",
    "check_product_fields",
    "check_variant",
    "product_changes",
    "variant_changes",
]

_MAX_ID: Final = 200
_MAX_NAME: Final = 500
_MAX_DESCRIPTION: Final = 20_000
_MAX_SHORT: Final = 200  # brand
_MAX_OPTION: Final = 100  # colour, size, one category name
_MAX_URL: Final = 2000
_MAX_LEVELS: Final = 8
_MAX_ATTRIBUTES: Final = 100
_MAX_ATTRIBUTES_BYTES: Final = 16_384
_MAX_VARIANTS: Final = 1000

PRODUCT_FIELDS: Final = frozenset(
    {
        "product_id",
        "name",
        "description",
        "brand",
        "category",
        "image_url",
        "attributes",
        "translations",
        "active",
        "variants",
    }
)
"""The fields a product may have (``variants`` only where a whole product is sent)."""

VARIANT_FIELDS: Final = frozenset(
    {
        "sku",
        "product_id",
        "colour",
        "size",
        "price",
        "currency",
        "image_url",
        "attributes",
        "active",
    }
)
"""The fields a variant may have (``color`` is read as ``colour``)."""


@dataclass(frozen=True, slots=True)
class VariantInput:
    sku: str
    price_minor: int
    currency: str
    colour: str | None = None
    size: str | None = None
    image_url: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True


@dataclass(frozen=True, slots=True)
class ProductInput:
    product_id: str
    name: str
    description: str = ""
    brand: str | None = None
    category: tuple[str, ...] = ()
    image_url: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    active: bool = True
    variants: tuple[VariantInput, ...] = ()


# -- single values --------------------------------------------------------------------------


def _problem(
    message: str, where: str | None, hint: str, code: str = "invalid_field"
) -> InvalidField:
    return InvalidField(message, field=where, hint=hint, code=code)


def _missing(where: str, example: str) -> InvalidField:
    return _problem(f"{where} is required.", where, f"Send it, e.g. {example}.", "missing_field")


def check_code(value: Any, where: str) -> str:
    """A product id or SKU: a string (or an integer, as many shops number them) of 1 to 200
    printable characters, spaces around it removed."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _problem(
            f"{where} must be a non-empty string.",
            where,
            'Send the id your own systems use, e.g. "JKT-1001".',
            "missing_field" if value is None or value == "" else "invalid_field",
        )
    text = value.strip()
    if len(text) > _MAX_ID or not text.isprintable():
        raise _problem(
            f"{where} must be at most {_MAX_ID} printable characters.",
            where,
            "Send a shorter id without control characters.",
        )
    return text


def _text(value: Any, where: str, limit: int, *, multiline: bool = False) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _problem(f"{where} must be a string.", where, "Send text as a JSON string.")
    text = value.strip()
    if len(text) > limit:
        raise _problem(
            f"{where} is {len(text)} characters; at most {limit} are allowed.",
            where,
            "Send a shorter text.",
        )
    allowed = (lambda c: c.isprintable() or c in "\n\r\t") if multiline else str.isprintable
    if not all(allowed(c) for c in text):
        raise _problem(
            f"{where} contains control characters.",
            where,
            "Send plain text" + (" (line breaks are fine)." if multiline else "."),
        )
    return text


def _optional_text(value: Any, where: str, limit: int) -> str | None:
    if value is None:
        return None
    return _text(value, where, limit) or None


def _required_text(value: Any, where: str, limit: int, example: str) -> str:
    if value is None:
        raise _missing(where, example)
    text = _text(value, where, limit)
    if not text:
        raise _missing(where, example)
    return text


def _url(value: Any, where: str) -> str | None:
    text = _optional_text(value, where, _MAX_URL)
    if text is None:
        return None
    if not text.lower().startswith(("https://", "http://")) or any(c.isspace() for c in text):
        raise _problem(
            f"{where} {text[:60]!r} is not an http(s) URL.",
            where,
            "Send the full address, e.g. https://cdn.example.fi/img/jkt-1001.jpg.",
        )
    return text


def _bool(value: Any, where: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _problem(f"{where} must be true or false.", where, "Send a JSON boolean.")


def _category(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(">")]
    elif isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            name = _text(part, f"{where}[{i}]", _MAX_OPTION)
            if ">" in name:
                raise _problem(
                    f"{where}[{i}] {name[:40]!r} contains '>', which separates category levels.",
                    f"{where}[{i}]",
                    "Send each level as its own item, without '>'.",
                )
            parts.append(name)
    else:
        raise _problem(
            f"{where} must be a list of names from the top level down, or one string.",
            where,
            'Send e.g. ["Naiset", "Takit"] or "Naiset > Takit".',
        )
    if any(not p for p in parts) or len(parts) > _MAX_LEVELS:
        raise _problem(
            f"{where} must have 1 to {_MAX_LEVELS} non-empty levels.",
            where,
            'Send e.g. ["Naiset", "Takit"] or "Naiset > Takit".',
        )
    for i, part in enumerate(parts):
        if len(part) > _MAX_OPTION or not part.isprintable():
            raise _problem(
                f"{where} level {i + 1} must be at most {_MAX_OPTION} printable characters.",
                where,
                "Send a shorter category name.",
            )
    return tuple(parts)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _attributes(value: Any, where: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):  # a CSV cell holding a JSON object
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _problem(
                f"{where} is not a JSON object.",
                where,
                'Send e.g. {"material": "villa", "fit": "regular"}.',
            ) from None
    if not isinstance(value, dict):
        raise _problem(f"{where} must be an object.", where, 'Send e.g. {"material": "villa"}.')
    if len(value) > _MAX_ATTRIBUTES:
        raise _problem(
            f"{where} has {len(value)} keys; at most {_MAX_ATTRIBUTES} are allowed.",
            where,
            "Keep the attributes a shop filters or shows.",
        )
    for key, item in value.items():
        if not key.strip() or len(key) > _MAX_OPTION or not key.isprintable():
            raise _problem(
                f"{where} has a key that is empty, too long or not printable.",
                where,
                f"Use short names (at most {_MAX_OPTION} characters), e.g. material.",
            )
        if not (_scalar(item) or (isinstance(item, list) and all(map(_scalar, item)))):
            raise _problem(
                f"{where}.{key} must be a string, number, boolean or a list of them.",
                f"{where}.{key}",
                "Flatten nested objects into separate attributes.",
            )
        if isinstance(item, float) and item != item:  # NaN cannot be stored as JSON
            raise _problem(f"{where}.{key} is not a number.", f"{where}.{key}", "Send a number.")
    if len(orjson.dumps(value)) > _MAX_ATTRIBUTES_BYTES:
        raise _problem(
            f"{where} is larger than {_MAX_ATTRIBUTES_BYTES} bytes as JSON.",
            where,
            "Keep long texts in the description.",
        )
    return {k.strip(): v for k, v in value.items()}


def _translations(value: Any, where: str) -> dict[str, dict[str, str]]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _problem(
            f"{where} must be an object by language.",
            where,
            'Send e.g. {"fi": {"name": "Talvitakki"}, "en": {"name": "Winter jacket"}}.',
        )
    found: dict[str, dict[str, str]] = {}
    for lang, texts in value.items():
        if lang not in LANGUAGES:
            raise _problem(
                f"{where} has the language {str(lang)[:20]!r}, which catalogue search does "
                "not support.",
                f"{where}.{lang}"[:200],
                f"Use one of: {', '.join(LANGUAGES)}.",
                "unsupported_language",
            )
        if not isinstance(texts, dict) or not set(texts) <= {"name", "description"}:
            raise _problem(
                f"{where}.{lang} must be an object with name and/or description.",
                f"{where}.{lang}",
                'Send e.g. {"name": "Talvitakki", "description": "..."}.',
            )
        entry: dict[str, str] = {}
        name = _optional_text(texts.get("name"), f"{where}.{lang}.name", _MAX_NAME)
        if name:
            entry["name"] = name
        description = texts.get("description")
        if description is not None:
            text = _text(
                description, f"{where}.{lang}.description", _MAX_DESCRIPTION, multiline=True
            )
            if text:
                entry["description"] = text
        if entry:
            found[lang] = entry
    return found


def _known_fields(raw: Mapping[str, Any], allowed: frozenset[str], prefix: str, what: str) -> None:
    for key in raw:
        if key not in allowed:
            where = f"{prefix}{key}" if isinstance(key, str) else prefix.rstrip(".")
            raise _problem(
                f"{where}: {what} has no field {str(key)[:40]!r}.",
                where[:200],
                f"Use only: {', '.join(sorted(allowed))}.",
                "unknown_field",
            )


def _object(raw: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _problem(
            f"{where or what} must be a JSON object.",
            where or None,
            "See the OpenAPI document at /openapi.json for the expected shape.",
        )
    fields: Mapping[str, Any] = raw
    if "color" in fields and "colour" not in fields:  # the American spelling is read too
        fields = {("colour" if k == "color" else k): v for k, v in fields.items()}
    return fields


# -- products and variants ---------------------------------------------------------------


def check_variant(raw: Any, where: str = "") -> VariantInput:
    """One variant; `where` prefixes field names (``variants[2].``)."""
    fields = _object(raw, where.rstrip("."), "A variant")
    _known_fields(fields, VARIANT_FIELDS, where, "a variant")
    sku = check_code(fields.get("sku"), f"{where}sku")
    if fields.get("currency") is None:
        raise _missing(f"{where}currency", "EUR")
    currency = currency_code(fields.get("currency"), f"{where}currency")
    if fields.get("price") is None or fields.get("price") == "":
        raise _missing(f"{where}price", "49.90")
    minor = price_minor(fields["price"], currency, f"{where}price")
    return VariantInput(
        sku=sku,
        price_minor=minor,
        currency=currency,
        colour=_optional_text(fields.get("colour"), f"{where}colour", _MAX_OPTION),
        size=_optional_text(fields.get("size"), f"{where}size", _MAX_OPTION),
        image_url=_url(fields.get("image_url"), f"{where}image_url"),
        attributes=_attributes(fields.get("attributes"), f"{where}attributes"),
        active=_bool(fields.get("active"), f"{where}active", True),
    )


def check_product_fields(raw: Any, product_id: str | None = None) -> ProductInput:
    """A product without its variants. `product_id` is the id the request's path names; a
    body may leave it out, but must not name another."""
    fields = _object(raw, "", "A product")
    _known_fields(fields, PRODUCT_FIELDS, "", "a product")
    given = fields.get("product_id")
    if product_id is None:
        pid = check_code(given, "product_id")
    else:
        pid = check_code(product_id, "product_id")
        if given is not None and check_code(given, "product_id") != pid:
            raise _problem(
                f"The body's product_id {str(given)[:60]!r} differs from the path's {pid!r}.",
                "product_id",
                "Leave product_id out of the body, or send the same id.",
            )
    description = fields.get("description")
    return ProductInput(
        product_id=pid,
        name=_required_text(fields.get("name"), "name", _MAX_NAME, '"Talvitakki Lumi"'),
        description=""
        if description is None
        else _text(description, "description", _MAX_DESCRIPTION, multiline=True),
        brand=_optional_text(fields.get("brand"), "brand", _MAX_SHORT),
        category=_category(fields.get("category"), "category"),
        image_url=_url(fields.get("image_url"), "image_url"),
        attributes=_attributes(fields.get("attributes"), "attributes"),
        translations=_translations(fields.get("translations"), "translations"),
        active=_bool(fields.get("active"), "active", True),
    )


def check_product(raw: Any, product_id: str | None = None) -> ProductInput:
    """A whole product with its variants (``variants``: a list, may be empty or absent)."""
    product = check_product_fields(raw, product_id)
    listed = raw.get("variants")
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        raise _problem(
            "variants must be a list of variants.",
            "variants",
            'Send e.g. [{"sku": "JKT-1001-M", "price": 149.0, "currency": "EUR"}].',
        )
    if len(listed) > _MAX_VARIANTS:
        raise _problem(
            f"A product may have at most {_MAX_VARIANTS} variants ({len(listed)} sent).",
            "variants",
            "Split the product, or send the variants in several requests.",
        )
    checked: list[VariantInput] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(listed):
        where = f"variants[{i}]."
        if isinstance(item, Mapping) and item.get("product_id") not in (None, product.product_id):
            raise _problem(
                f"{where}product_id names another product than the one it is sent with.",
                f"{where}product_id",
                "Leave product_id out of variants sent with their product.",
            )
        variant = check_variant(item, where)
        if variant.sku in seen:
            raise _problem(
                f"SKU {variant.sku!r} is given twice (variants[{seen[variant.sku]}] and "
                f"variants[{i}]).",
                f"{where}sku",
                "Give each variant its own SKU.",
                "duplicate_sku",
            )
        seen[variant.sku] = i
        checked.append(variant)
    return ProductInput(**{**_fields_of(product), "variants": tuple(checked)})


def _fields_of(product: ProductInput) -> dict[str, Any]:
    return {name: getattr(product, name) for name in ProductInput.__dataclass_fields__}


def product_changes(raw: Any) -> dict[str, Any]:
    """The fields a partial update (PATCH) changes, checked; ``null`` clears an optional
    field. Variants change through their own endpoint."""
    fields = _object(raw, "", "A product")
    _known_fields(fields, PRODUCT_FIELDS - {"variants", "product_id"}, "", "a product update")
    checkers: dict[str, Any] = {
        "name": lambda v: _required_text(v, "name", _MAX_NAME, '"Talvitakki Lumi"'),
        "description": lambda v: (
            "" if v is None else _text(v, "description", _MAX_DESCRIPTION, multiline=True)
        ),
        "brand": lambda v: _optional_text(v, "brand", _MAX_SHORT),
        "category": lambda v: _category(v, "category"),
        "image_url": lambda v: _url(v, "image_url"),
        "attributes": lambda v: _attributes(v, "attributes"),
        "translations": lambda v: _translations(v, "translations"),
        "active": lambda v: _bool(v, "active", True) if v is not None else _active_null(),
    }
    return {key: checkers[key](value) for key, value in fields.items()}


def _active_null() -> bool:
    raise _problem("active must be true or false.", "active", "Send a JSON boolean.")


def variant_changes(raw: Any) -> dict[str, Any]:
    """The fields a partial update of a variant changes, checked. A new price is checked
    against the currency sent with it, else the variant's own (see the actions)."""
    fields = _object(raw, "", "A variant")
    _known_fields(fields, VARIANT_FIELDS - {"sku", "product_id"}, "", "a variant update")
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "currency":
            changes[key] = currency_code(value, "currency")
        elif key == "price":
            if value is None or value == "":
                raise _missing("price", "49.90")
            changes[key] = value  # checked with the currency it will have
        elif key in ("colour", "size"):
            changes[key] = _optional_text(value, key, _MAX_OPTION)
        elif key == "image_url":
            changes[key] = _url(value, key)
        elif key == "attributes":
            changes[key] = _attributes(value, key)
        elif key == "active":
            if value is None:
                _active_null()
            changes[key] = _bool(value, key, True)
    return changes
