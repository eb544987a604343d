"""Turn one Segment message into the normalised identifiers that identity resolution matches on.

`extract(message, config)` takes one message as received over the Segment HTTP Tracking API (a
plain dict) and returns its identifiers, highest priority first. It runs on every event of the
ingest path, so it never raises on bad data: a value that is junk or invalid is skipped, and
`junk_reason()` says why.

Where identifiers come from
---------------------------

==============================================  =================================================
Message field                                   Identifier type
==============================================  =================================================
``userId``                                      ``user_id``
``anonymousId``                                 ``anonymous_id``
``previousId`` (``alias`` messages only)        ``anonymous_id``; ``user_id`` when
                                                ``alias_previous_as_user_id`` is set. Skipped
                                                when equal to the message's ``userId``.
``traits.email``, ``context.traits.email``,     ``email``
``properties.email``,
``properties.receipt_email``/``receiptEmail``
``traits.phone``, ``context.traits.phone``,     ``phone``
``properties.phone``
``traits.loyalty_card``/``loyaltyCard``,        ``loyalty_card``
the same in ``context.traits``,
``properties.loyalty_card``/``loyaltyCard``,
``properties.loyalty_card_id``/``loyaltyCardId``
``traits.pos_customer_id``/``posCustomerId``,   ``pos_customer_id``
the same in ``context.traits`` and
``properties``
``context.device.id``                           ``device_id``
``traits.<key>``, ``context.traits.<key>``      ``IdentityConfig.extra_trait_types[key]``
==============================================  =================================================

* The top-level ``traits`` of a ``group`` message describe the group (a company, a household),
  not the person, so they are ignored; ``groupId`` is not a person's identifier either.
* ``properties`` are read whatever the message type: till integrations send ``POS Order
  Completed`` as a track event with the loyalty card and the receipt email in its properties.
* A type missing from ``IdentityConfig.types`` is not extracted: removing it turns it off.

Normalisation (`normalise`)
---------------------------

Every value must be a string or an integer (never a bool, float, list or dict), be non-empty
after stripping, be at most `MAX_VALUE_LENGTH` characters, contain only printable characters,
and not be a blocked value (``"null"``, ``"undefined"``, ``"0"``, ...; compared lower-cased) or a
placeholder made only of zeros, spaces and dashes. Then, per type:

* ``email``: lower-cased whole (no provider-specific tricks such as dropping Gmail dots, since
  those would merge people on a guess); exactly one ``@``, a dotted domain, no whitespace; the
  domain (or a parent domain) must not be blocked, nor the address or its local part.
* ``phone``: E.164 (``+358401234567``) via libphonenumber; numbers without a country code are
  read in ``default_region``; the number must be valid, not merely well-formed.
* ``loyalty_card``, ``pos_customer_id``: whitespace and dashes removed, upper-cased, because
  cashiers and receipts print them in groups (``"1234 5678-90"``).
* ``user_id``, ``anonymous_id``, ``device_id`` and configured extra types: stripped, case kept.

Shared devices
--------------

Store tablets, tills and kiosks are used by many people. A device is shared when its id is in
``shared_devices``, when ``context.device.shared`` is true, or when ``context.device.type`` is in
``shared_device_types``. On a shared device both the ``device_id`` and the ``anonymous_id``
identifiers of the message are marked ``shared``: the browser or app on a kiosk keeps the same
anonymous id from one customer to the next, so it identifies the device, not a person. Shared
identifiers are recorded but never used to join two people.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import phonenumbers

__all__ = [
    "DEFAULT_BLOCKED_EMAILS",
    "DEFAULT_BLOCKED_EMAIL_DOMAINS",
    "DEFAULT_BLOCKED_VALUES",
    "DEFAULT_SHARED_DEVICE_TYPES",
    "DEFAULT_TYPES",
    "MAX_VALUE_LENGTH",
    "Identifier",
    "IdentifierType",
    "IdentityConfig",
    "extract",
    "identifier_keys",
    "junk_reason",
    "normalise",
]

#: Longest accepted value; anything longer is not an identifier (and would not fit the index).
MAX_VALUE_LENGTH = 255


@dataclass(frozen=True, slots=True)
class IdentifierType:
    """A kind of identifier, with its rank and how many of it one profile may hold.

    `priority` 1 is the strongest: on a conflict the profile holding the higher-priority
    identifier wins, and the lower-priority identifiers are the ones dropped. `limit` caps how
    many identifiers of this type one profile keeps (a person has one user id, a few emails).
    """

    name: str
    priority: int
    limit: int
    help: str

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64 or not self.name.isidentifier():
            raise ValueError(
                f"identifier type name {self.name!r} must be 1-64 characters of letters, "
                "digits and underscores (for example 'crm_id')"
            )
        if self.priority < 1:
            raise ValueError(
                f"identifier type {self.name!r} has priority {self.priority}; use 1 or more "
                "(1 is the highest)"
            )
        if self.limit < 1:
            raise ValueError(f"identifier type {self.name!r} has limit {self.limit}; use 1 or more")


DEFAULT_TYPES: tuple[IdentifierType, ...] = (
    IdentifierType("user_id", 1, 1, "The id your own systems give a signed-in customer."),
    IdentifierType("email", 2, 5, "Email address, lower-cased."),
    IdentifierType("phone", 3, 3, "Phone number in E.164 form, e.g. +358401234567."),
    IdentifierType("loyalty_card", 4, 2, "Loyalty card number, without spaces or dashes."),
    IdentifierType("pos_customer_id", 5, 1, "Customer id in the point-of-sale system."),
    IdentifierType("device_id", 6, 20, "Device id from context.device.id (app installs)."),
    IdentifierType("anonymous_id", 7, 1000, "Segment anonymousId set by a browser or app."),
)

#: Values that mean "no value" in the systems that send events; compared lower-cased.
DEFAULT_BLOCKED_VALUES: frozenset[str] = frozenset(
    {
        # Serialised absence: JavaScript, Python, SQL, Objective-C, spreadsheets.
        "",
        "null",
        "(null)",
        "<null>",
        "nil",
        "none",
        "undefined",
        "nan",
        "[object object]",
        "{}",
        "[]",
        # Booleans and sentinels that end up in id fields.
        "true",
        "false",
        "0",
        "-1",
        "-",
        "--",
        ".",
        "?",
        "00000000-0000-0000-0000-000000000000",
        # Placeholders typed by people or set by tag managers.
        "anonymous",
        "anon",
        "unknown",
        "n/a",
        "na",
        "n.a.",
        "not set",
        "(not set)",
        "test",
        "guest",
    }
)

#: Email domains that never belong to a customer; a subdomain of one is blocked too.
DEFAULT_BLOCKED_EMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Reserved for documentation (RFC 2606) and the reserved top-level domains.
        "example.com",
        "example.org",
        "example.net",
        "example",
        "invalid",
        "test",
        "localhost",
        # Test domains and disposable inboxes.
        "test.com",
        "test.fi",
        "mailinator.com",
    }
)

#: Email addresses that never identify one person. An entry ending in "@" blocks that local
#: part on every domain; any other entry blocks exactly that address.
DEFAULT_BLOCKED_EMAILS: frozenset[str] = frozenset(
    {
        # Automated senders: no person reads them, and forwarded mail carries them around.
        "noreply@",
        "no-reply@",
        "donotreply@",
        "do-not-reply@",
        "mailer-daemon@",
        # Placeholders typed at tills and in forms when the customer gives no address; one of
        # these on thousands of receipts would join thousands of people into one profile.
        "noemail@",
        "no-email@",
        "nomail@",
        "no@",
        "none@",
        "null@",
        "na@",
        "test@",
        # Whole placeholder addresses on real domains. (test@test.com and no@email.com need no
        # entry: the local-part rules above and the blocked domains already cover them.)
        "email@email.com",
        "a@a.com",
        "asdf@asdf.com",
    }
)

#: Values of context.device.type that mean a device many people use.
DEFAULT_SHARED_DEVICE_TYPES: frozenset[str] = frozenset({"pos", "till", "kiosk", "store_tablet"})


def _no_extra_traits() -> Mapping[str, str]:
    return MappingProxyType({})


def _device_type_key(raw: str) -> str:
    """Fold a device type so that "Store Tablet", "store-tablet" and "store_tablet" match."""
    return raw.strip().lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Which identifiers exist and which values are junk, for one workspace.

    Attributes:
        types: the identifier types, each with its priority and per-profile limit.
        default_region: ISO region used for phone numbers without a country code.
        blocked_values: values (any type) that mean "no value"; compared lower-cased.
        blocked_email_domains: email domains never accepted; their subdomains neither.
        blocked_emails: blocked addresses; an entry ending in "@" blocks that local part.
        shared_devices: device ids of shared devices (store tablets, tills, kiosks).
        shared_device_types: context.device.type values that mark a device as shared.
        extra_trait_types: trait key -> identifier type name, read from traits and
            context.traits, e.g. {"crm_id": "crm_id"} or {"mobile": "phone"}; the type must be
            in `types`. Values are normalised by the rules of the type they map to.
        alias_previous_as_user_id: read an alias's previousId as a user_id instead of an
            anonymous_id, for sources whose alias calls join two of your own user ids.

    Invalid configuration raises ValueError when the config is built, never per event.
    """

    types: tuple[IdentifierType, ...] = DEFAULT_TYPES
    default_region: str = "FI"
    blocked_values: frozenset[str] = DEFAULT_BLOCKED_VALUES
    blocked_email_domains: frozenset[str] = DEFAULT_BLOCKED_EMAIL_DOMAINS
    blocked_emails: frozenset[str] = DEFAULT_BLOCKED_EMAILS
    shared_devices: frozenset[str] = frozenset()
    shared_device_types: frozenset[str] = DEFAULT_SHARED_DEVICE_TYPES
    extra_trait_types: Mapping[str, str] = field(default_factory=_no_extra_traits, hash=False)
    alias_previous_as_user_id: bool = False
    _by_name: Mapping[str, IdentifierType] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        by_name: dict[str, IdentifierType] = {}
        for id_type in self.types:
            if id_type.name in by_name:
                raise ValueError(
                    f"identifier type {id_type.name!r} is listed twice in IdentityConfig.types; "
                    "keep one entry per type"
                )
            by_name[id_type.name] = id_type
        region = self.default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"default_region {self.default_region!r} is not a region libphonenumber knows; "
                "use a two-letter ISO 3166 code such as 'FI' or 'SE'"
            )
        for key, type_name in self.extra_trait_types.items():
            if type_name not in by_name:
                raise ValueError(
                    f"extra_trait_types maps trait {key!r} to unknown identifier type "
                    f"{type_name!r}; add IdentifierType({type_name!r}, ...) to "
                    "IdentityConfig.types"
                )
        # Store the sets in the form they are compared in, so callers may pass any case and
        # so the per-event code never normalises configuration.
        fixed: dict[str, object] = {
            "_by_name": MappingProxyType(by_name),
            "default_region": region,
            "blocked_values": frozenset(v.strip().lower() for v in self.blocked_values),
            "blocked_email_domains": frozenset(
                d.strip().lower().strip(".") for d in self.blocked_email_domains
            ),
            "blocked_emails": frozenset(e.strip().lower() for e in self.blocked_emails),
            "shared_devices": frozenset(d.strip() for d in self.shared_devices),
            "shared_device_types": frozenset(_device_type_key(t) for t in self.shared_device_types),
            "extra_trait_types": MappingProxyType(dict(self.extra_trait_types)),
        }
        for name, value in fixed.items():
            object.__setattr__(self, name, value)

    def type(self, name: str) -> IdentifierType:
        """The identifier type called `name`; KeyError naming the known types if there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise KeyError(
                f"unknown identifier type {name!r}; known types: {known}. "
                "Add an IdentifierType to IdentityConfig.types to use a new one."
            ) from None


@dataclass(frozen=True, slots=True)
class Identifier:
    """One normalised identifier found in a message.

    `shared` marks identifiers of shared devices (store tablets, tills, kiosks): they are
    recorded on the profile but never used to join two people.
    """

    type: str
    value: str
    shared: bool = False


# A check returns (normalised value, None) when accepted and (None, reason) when rejected.
_Result = tuple[str, None] | tuple[None, str]


def _check_plain(text: str, config: IdentityConfig) -> _Result:
    return text, None


def _check_code(text: str, config: IdentityConfig) -> _Result:
    # Never empty: _check has already rejected values made only of zeros, spaces and dashes.
    code = "".join(text.split()).replace("-", "").upper()
    if code.lower() in config.blocked_values:
        return None, f"blocked value {code.lower()!r}"
    return code, None


def _check_email(text: str, config: IdentityConfig) -> _Result:
    email = text.lower()
    at_count = email.count("@")
    if at_count == 0:
        return None, "email has no '@'"
    if at_count > 1:
        return None, "email has more than one '@'"
    local, _, domain = email.partition("@")
    if not local:
        return None, "email has nothing before '@'"
    if " " in email:  # the only whitespace _check lets through
        return None, "email contains whitespace"
    suffix = domain
    while True:
        if suffix in config.blocked_email_domains:
            return None, f"email domain {suffix} is blocked"
        dot = suffix.find(".")
        if dot < 0:
            break
        suffix = suffix[dot + 1 :]
    if "." not in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return None, f"email domain {domain!r} is not a valid domain"
    if email in config.blocked_emails:
        return None, f"email {email} is blocked"
    if local + "@" in config.blocked_emails:
        return None, f"email local part '{local}@' is blocked"
    return email, None


@functools.lru_cache(maxsize=8192)
def _parse_phone(text: str, region: str) -> _Result:
    # Cached: the same few numbers recur on a busy store's events, and parsing is the slowest
    # step of extract(). The reason never repeats the number, so it is safe to log.
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, f"cannot be read as a phone number for region {region}"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number for region {region}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def _check_phone(text: str, config: IdentityConfig) -> _Result:
    return _parse_phone(text, config.default_region)


_RULES: Mapping[str, Callable[[str, IdentityConfig], _Result]] = MappingProxyType(
    {
        "user_id": _check_plain,
        "anonymous_id": _check_plain,
        "device_id": _check_plain,
        "email": _check_email,
        "phone": _check_phone,
        "loyalty_card": _check_code,
        "pos_customer_id": _check_code,
    }
)


def _check(type_name: str, raw: object, config: IdentityConfig) -> _Result:
    """The one place that decides whether a value is accepted; both public checks use it."""
    if isinstance(raw, str):
        text = raw.strip()
    elif isinstance(raw, int) and not isinstance(raw, bool):
        try:
            text = str(int(raw))
        except ValueError:  # more digits than int->str conversion allows
            return None, "integer too large to be an identifier"
    else:
        return None, f"expected a string or integer, got {type(raw).__name__}"
    if not text:
        return None, "empty after stripping whitespace"
    if len(text) > MAX_VALUE_LENGTH:
        return None, f"longer than {MAX_VALUE_LENGTH} characters"
    if not text.isprintable():
        return None, "contains control or non-printable characters"
    lowered = text.lower()
    if lowered in config.blocked_values:
        return None, f"blocked value {lowered!r}"
    if not text.strip("0- "):
        return None, "placeholder made only of zeros, spaces and dashes"
    return _RULES.get(type_name, _check_plain)(text, config)


def junk_reason(type_name: str, raw: object, config: IdentityConfig) -> str | None:
    """Why `raw` is not a usable identifier of type `type_name`, or None if it is.

    Raises KeyError only for a type that is not in `config.types` (a programming error);
    bad data never raises.
    """
    config.type(type_name)
    return _check(type_name, raw, config)[1]


def normalise(type_name: str, raw: object, config: IdentityConfig) -> str | None:
    """The normalised form of `raw` as an identifier of type `type_name`; None if it is junk.

    Two values that mean the same identifier (" Anna@Example.FI", "anna@example.fi") normalise
    to the same string, so matching is an equality test. Raises KeyError only for a type that
    is not in `config.types`.
    """
    config.type(type_name)
    return _check(type_name, raw, config)[0]


# Keys read from traits and context.traits, and from properties, with their identifier type.
_TRAIT_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "email": "email",
        "phone": "phone",
        "loyalty_card": "loyalty_card",
        "loyaltyCard": "loyalty_card",
        "pos_customer_id": "pos_customer_id",
        "posCustomerId": "pos_customer_id",
    }
)
_PROPERTY_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "email": "email",
        "receipt_email": "email",
        "receiptEmail": "email",
        "phone": "phone",
        "loyalty_card": "loyalty_card",
        "loyaltyCard": "loyalty_card",
        "loyalty_card_id": "loyalty_card",
        "loyaltyCardId": "loyalty_card",
        "pos_customer_id": "pos_customer_id",
        "posCustomerId": "pos_customer_id",
    }
)
_TRAIT_KEY_SET = frozenset(_TRAIT_KEYS)
_PROPERTY_KEY_SET = frozenset(_PROPERTY_KEYS)

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _as_mapping(value: object) -> Mapping[Any, Any]:
    # Parsed JSON is a plain dict: test that first, the ABC check is slow.
    if type(value) is dict or isinstance(value, Mapping):
        return value
    return _EMPTY


def _is_true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _add(
    found: dict[tuple[str, str], bool],
    config: IdentityConfig,
    type_name: str,
    raw: object,
    shared: bool = False,
) -> str | None:
    """Record `raw` as `type_name` if that type is configured and the value accepted.

    Returns the normalised value that was recorded, or None.
    """
    if raw is None or type_name not in config._by_name:
        return None
    value = _check(type_name, raw, config)[0]
    if value is not None:
        key = (type_name, value)
        found[key] = found.get(key, False) or shared
    return value


def _add_keyed(
    found: dict[tuple[str, str], bool],
    config: IdentityConfig,
    source: Mapping[Any, Any],
    keys: Mapping[str, str],
    key_set: frozenset[str],
) -> None:
    """Add the identifiers that `source` holds under `keys` (most objects hold none of
    them, which one set intersection tells)."""
    for key in key_set.intersection(source):
        raw = source[key]
        if raw is not None:
            _add(found, config, keys[key], raw)


def identifier_keys(
    message: Mapping[str, Any], config: IdentityConfig
) -> list[tuple[str, str, bool]]:
    """`extract` as ``(type, value, shared)`` tuples, for the identity consumer's hot path."""
    if not isinstance(message, Mapping):
        return []
    found: dict[tuple[str, str], bool] = {}
    message_type = message.get("type")
    context = _as_mapping(message.get("context"))
    on_shared_device = False
    device = context.get("device")
    if device is not None:
        device = _as_mapping(device)
        device_id = _add(found, config, "device_id", device.get("id"))
        device_type = device.get("type")
        on_shared_device = (
            _is_true(device.get("shared"))
            or (
                isinstance(device_type, str)
                and _device_type_key(device_type) in config.shared_device_types
            )
            or (device_id is not None and device_id in config.shared_devices)
        )
        if on_shared_device and device_id is not None:
            found["device_id", device_id] = True

    user_id = _add(found, config, "user_id", message.get("userId"))
    _add(found, config, "anonymous_id", message.get("anonymousId"), on_shared_device)
    if message_type == "alias":
        # alias says "previousId and userId are the same person"; an alias of an id to itself
        # says nothing.
        previous_type = "user_id" if config.alias_previous_as_user_id else "anonymous_id"
        previous_id = message.get("previousId")
        if previous_id is not None and _check(previous_type, previous_id, config)[0] != user_id:
            shared = on_shared_device and previous_type == "anonymous_id"
            _add(found, config, previous_type, previous_id, shared)

    extra_traits = config.extra_trait_types
    trait_sources = [_as_mapping(context.get("traits"))]
    if message_type != "group":  # a group's traits describe the group, not the person
        trait_sources.append(_as_mapping(message.get("traits")))
    for traits in trait_sources:
        if not traits:
            continue
        _add_keyed(found, config, traits, _TRAIT_KEYS, _TRAIT_KEY_SET)
        for key, type_name in extra_traits.items():
            if (raw := traits.get(key)) is not None:
                _add(found, config, type_name, raw)
    properties = _as_mapping(message.get("properties"))
    if properties:
        _add_keyed(found, config, properties, _PROPERTY_KEYS, _PROPERTY_KEY_SET)

    if len(found) == 1:
        ((type_name, value), shared) = next(iter(found.items()))
        return [(type_name, value, shared)]
    by_name = config._by_name
    ordered = sorted(found, key=lambda key: (by_name[key[0]].priority, key[0], key[1]))
    return [(type_name, value, found[type_name, value]) for type_name, value in ordered]


def extract(message: Mapping[str, Any], config: IdentityConfig) -> list[Identifier]:
    """The identifiers in one Segment message, de-duplicated, highest priority first.

    See the module docstring for where each identifier comes from. Junk and invalid values are
    skipped; malformed messages (a non-dict context, lists where strings belong) yield what can
    be read and never raise, because this runs on every ingested event.
    """
    return [Identifier(t, v, shared) for t, v, shared in identifier_keys(message, config)]
