"""Identifier extraction and normalisation: what identity resolution will match on."""

from __future__ import annotations

from typing import Any

import pytest

from polku.identity import identifiers
from polku.identity.identifiers import (
    DEFAULT_TYPES,
    Identifier,
    IdentifierType,
    IdentityConfig,
    extract,
    junk_reason,
    normalise,
)

CONFIG = IdentityConfig()


def pairs(found: list[Identifier]) -> list[tuple[str, str]]:
    return [(i.type, i.value) for i in found]


# --- public surface ---------------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert sorted(identifiers.__all__) == [
        "DEFAULT_BLOCKED_EMAILS",
        "DEFAULT_BLOCKED_EMAIL_DOMAINS",
        "DEFAULT_BLOCKED_VALUES",
        "DEFAULT_SHARED_DEVICE_TYPES",
        "DEFAULT_TYPES",
        "Identifier",
        "IdentifierType",
        "IdentityConfig",
        "MAX_VALUE_LENGTH",
        "extract",
        "identifier_keys",
        "junk_reason",
        "normalise",
    ]
    for name in identifiers.__all__:
        assert hasattr(identifiers, name)


def test_default_types_are_in_priority_order_with_their_limits() -> None:
    assert [(t.name, t.priority, t.limit) for t in DEFAULT_TYPES] == [
        ("user_id", 1, 1),
        ("email", 2, 5),
        ("phone", 3, 3),
        ("loyalty_card", 4, 2),
        ("pos_customer_id", 5, 1),
        ("device_id", 6, 20),
        ("anonymous_id", 7, 1000),
    ]
    assert all(t.help for t in DEFAULT_TYPES)


def test_config_type_lookup_and_unknown_type_message() -> None:
    assert CONFIG.type("email").limit == 5
    with pytest.raises(KeyError, match=r"unknown identifier type 'crm_id'.*user_id"):
        CONFIG.type("crm_id")
    with pytest.raises(KeyError, match="crm_id"):
        normalise("crm_id", "C-1", CONFIG)


# --- normalisation: email ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["anna.virtanen@kauppa.fi", "  Anna.Virtanen@Kauppa.FI\n", "ANNA.VIRTANEN@KAUPPA.FI"],
)
def test_email_is_stripped_and_lower_cased(raw: str) -> None:
    assert normalise("email", raw, CONFIG) == "anna.virtanen@kauppa.fi"


def test_email_keeps_dots_and_plus_tags() -> None:
    # No provider-specific folding: these may be different people, so they must not match.
    assert normalise("email", "a.n.n.a+shop@gmail.com", CONFIG) == "a.n.n.a+shop@gmail.com"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("anna.kauppa.fi", "email has no '@'"),
        ("anna@@kauppa.fi", "email has more than one '@'"),
        ("@kauppa.fi", "email has nothing before '@'"),
        ("anna virtanen@kauppa.fi", "email contains whitespace"),
        ("anna@example.com", "email domain example.com is blocked"),
        ("anna@Mail.Example.COM", "email domain example.com is blocked"),
        ("anna@mailinator.com", "email domain mailinator.com is blocked"),
        ("anna@localhost", "email domain localhost is blocked"),
        ("anna@shop.invalid", "email domain invalid is blocked"),
        ("anna@kauppa", "email domain 'kauppa' is not a valid domain"),
        ("anna@kauppa..fi", "email domain 'kauppa..fi' is not a valid domain"),
        ("NoReply@kauppa.fi", "email local part 'noreply@' is blocked"),
        ("noemail@gmail.com", "email local part 'noemail@' is blocked"),
        ("a@a.com", "email a@a.com is blocked"),
        ("undefined", "blocked value 'undefined'"),
    ],
)
def test_junk_emails_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    assert normalise("email", raw, CONFIG) is None
    assert junk_reason("email", raw, CONFIG) == reason


# --- normalisation: phone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+358401234567",
        "+358 40 123 4567",
        "040 1234567",
        "040-123 4567",
        "(040) 123 4567",
        "00358401234567",
        " 0401234567 ",
        "tel:+358-40-123-4567",
    ],
)
def test_finnish_phone_formats_normalise_to_e164(raw: str) -> None:
    assert normalise("phone", raw, CONFIG) == "+358401234567"


def test_swedish_number_with_country_code_is_kept_swedish() -> None:
    assert normalise("phone", "+46 70 123 45 67", CONFIG) == "+46701234567"


def test_default_region_decides_numbers_without_country_code() -> None:
    swedish = IdentityConfig(default_region="se")
    assert swedish.default_region == "SE"
    assert normalise("phone", "070-123 45 67", swedish) == "+46701234567"
    assert normalise("phone", "040 1234567", CONFIG) == "+358401234567"


@pytest.mark.parametrize(
    "raw", ["abc", "12", "1234567", "+358 000", "+999 1234567", "0000000", "040 12", 40.1234567]
)
def test_garbage_phone_numbers_are_rejected(raw: object) -> None:
    assert normalise("phone", raw, CONFIG) is None
    assert junk_reason("phone", raw, CONFIG)


def test_invalid_phone_reason_names_the_region_not_the_number() -> None:
    reason = junk_reason("phone", "1234567", CONFIG)
    assert reason == "not a valid phone number for region FI"


# --- normalisation: codes and ids -------------------------------------------------------------


@pytest.mark.parametrize("raw", ["ab-1234 5678", " AB1234-5678 ", "ab  1234   5678"])
def test_loyalty_card_drops_spaces_and_dashes_and_upper_cases(raw: str) -> None:
    assert normalise("loyalty_card", raw, CONFIG) == "AB12345678"


def test_pos_customer_id_is_normalised_like_a_card_and_accepts_ints() -> None:
    assert normalise("pos_customer_id", "c-00042", CONFIG) == "C00042"
    assert normalise("pos_customer_id", 42, CONFIG) == "42"


def test_loyalty_card_placeholder_after_normalisation_is_rejected() -> None:
    assert normalise("loyalty_card", "N-A", CONFIG) is None
    placeholder = "placeholder made only of zeros, spaces and dashes"
    assert junk_reason("loyalty_card", "- -", CONFIG) == placeholder
    assert junk_reason("loyalty_card", "0000 0000", CONFIG) == placeholder


@pytest.mark.parametrize("type_name", ["user_id", "anonymous_id", "device_id"])
def test_plain_ids_are_stripped_and_keep_their_case(type_name: str) -> None:
    assert normalise(type_name, "  AbC-123 ", CONFIG) == "AbC-123"
    assert normalise(type_name, 12345, CONFIG) == "12345"


@pytest.mark.parametrize("type_name", [t.name for t in DEFAULT_TYPES])
@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "null",
        "NULL",
        "undefined",
        "None",
        "NaN",
        "[object Object]",
        "00000000-0000-0000-0000-000000000000",
        "0",
        0,
        -1,
        "000-000",
        True,
        False,
        1.5,
        ["anna@kauppa.fi"],
        {"email": "anna@kauppa.fi"},
        b"abc",
        "abc\x00def",
        "x" * 300,
        10**300,
        pytest.param(10**5000, id="int-too-long-for-str"),
    ],
)
def test_junk_values_are_rejected_for_every_type(type_name: str, raw: object) -> None:
    assert normalise(type_name, raw, CONFIG) is None
    assert isinstance(junk_reason(type_name, raw, CONFIG), str)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Undefined", "blocked value 'undefined'"),
        (True, "expected a string or integer, got bool"),
        ({"a": 1}, "expected a string or integer, got dict"),
        ("  ", "empty after stripping whitespace"),
        pytest.param(10**5000, "integer too large to be an identifier", id="huge-int"),
        ("a\nb", "contains control or non-printable characters"),
    ],
)
def test_junk_reason_says_why(raw: object, reason: str) -> None:
    assert junk_reason("user_id", raw, CONFIG) == reason


@pytest.mark.parametrize(
    ("type_name", "raw"),
    [
        ("email", " X@Kauppa.fi"),
        ("email", "x@example.com"),
        ("phone", "040 1234567"),
        ("phone", "123"),
        ("loyalty_card", "ab 12"),
        ("user_id", "guest"),
        ("user_id", "u-1"),
    ],
)
def test_normalise_and_junk_reason_agree(type_name: str, raw: object) -> None:
    value = normalise(type_name, raw, CONFIG)
    reason = junk_reason(type_name, raw, CONFIG)
    assert (value is None) != (reason is None)


def test_configured_block_lists_are_matched_case_insensitively() -> None:
    config = IdentityConfig(
        blocked_values=frozenset({"ASIAKAS"}),
        blocked_email_domains=frozenset({"Kauppa.FI"}),
        blocked_emails=frozenset({"Kassa@"}),
    )
    assert normalise("user_id", "asiakas", config) is None
    assert normalise("email", "anna@kauppa.fi", config) is None
    assert normalise("email", "kassa@gmail.com", config) is None
    assert normalise("email", "anna@gmail.com", config) == "anna@gmail.com"


# --- configuration validation -----------------------------------------------------------------


def test_invalid_configuration_fails_when_built() -> None:
    with pytest.raises(ValueError, match="add IdentifierType\\('crm_id'"):
        IdentityConfig(extra_trait_types={"crm_id": "crm_id"})
    with pytest.raises(ValueError, match="listed twice"):
        IdentityConfig(types=(*DEFAULT_TYPES, DEFAULT_TYPES[0]))
    with pytest.raises(ValueError, match="default_region 'XX'"):
        IdentityConfig(default_region="XX")
    with pytest.raises(ValueError, match="priority 0"):
        IdentifierType("crm_id", 0, 1, "CRM id")
    with pytest.raises(ValueError, match="limit 0"):
        IdentifierType("crm_id", 8, 0, "CRM id")


def test_config_copies_extra_trait_types_and_stays_hashable() -> None:
    extra = {"crm_id": "crm_id"}
    config = IdentityConfig(
        types=(*DEFAULT_TYPES, IdentifierType("crm_id", 8, 1, "CRM id")),
        extra_trait_types=extra,
    )
    extra["member_no"] = "crm_id"  # changing the caller's dict later must not change the config
    assert dict(config.extra_trait_types) == {"crm_id": "crm_id"}
    assert hash(config) == hash(config)


# --- extraction -------------------------------------------------------------------------------


def test_identify_yields_all_identifiers_in_priority_order() -> None:
    message = {
        "type": "identify",
        "userId": "cust-981",
        "anonymousId": "5a1f0c3e-2b7d-4e11-9a77-0d3a2e6f9b10",
        "traits": {
            "email": " Anna.Virtanen@Kauppa.fi ",
            "phone": "040 123 4567",
            "loyaltyCard": "1234 5678",
            "name": "Anna Virtanen",
        },
        "context": {"device": {"id": "ios-device-7", "type": "ios"}},
    }
    assert extract(message, CONFIG) == [
        Identifier("user_id", "cust-981"),
        Identifier("email", "anna.virtanen@kauppa.fi"),
        Identifier("phone", "+358401234567"),
        Identifier("loyalty_card", "12345678"),
        Identifier("device_id", "ios-device-7"),
        Identifier("anonymous_id", "5a1f0c3e-2b7d-4e11-9a77-0d3a2e6f9b10"),
    ]


def test_pos_order_completed_reads_loyalty_card_and_emails_from_properties() -> None:
    message = {
        "type": "track",
        "event": "POS Order Completed",
        "anonymousId": "till-session-31",
        "properties": {
            "store_id": "hki-01",
            "order_id": "R-2024-0001",
            "loyalty_card": "9900-1234-5678",
            "email": "Matti@Posti.fi",
            "receipt_email": "matti.meikalainen@gmail.com",
            "pos_customer_id": "c 77",
            "total": 42.5,
        },
        "context": {"channel": "store", "device": {"id": "till-3", "type": "till"}},
    }
    assert pairs(extract(message, CONFIG)) == [
        ("email", "matti.meikalainen@gmail.com"),
        ("email", "matti@posti.fi"),
        ("loyalty_card", "990012345678"),
        ("pos_customer_id", "C77"),
        ("device_id", "till-3"),
        ("anonymous_id", "till-session-31"),
    ]


def test_page_reads_context_traits() -> None:
    message = {
        "type": "page",
        "name": "Checkout",
        "anonymousId": "anon-1",
        "properties": {"url": "https://kauppa.fi/checkout"},
        "context": {"traits": {"email": "anna@kauppa.fi", "phone": "+46701234567"}},
    }
    assert pairs(extract(message, CONFIG)) == [
        ("email", "anna@kauppa.fi"),
        ("phone", "+46701234567"),
        ("anonymous_id", "anon-1"),
    ]


def test_alias_reads_previous_id_as_anonymous_id_by_default() -> None:
    message = {"type": "alias", "previousId": "anon-42", "userId": "cust-1"}
    assert pairs(extract(message, CONFIG)) == [("user_id", "cust-1"), ("anonymous_id", "anon-42")]


def test_alias_previous_id_as_user_id_when_configured() -> None:
    config = IdentityConfig(alias_previous_as_user_id=True)
    message = {"type": "alias", "previousId": "old-crm-7", "userId": "cust-1"}
    assert pairs(extract(message, config)) == [("user_id", "cust-1"), ("user_id", "old-crm-7")]


def test_alias_to_itself_and_previous_id_outside_alias_are_ignored() -> None:
    assert pairs(extract({"type": "alias", "previousId": " u1 ", "userId": "u1"}, CONFIG)) == [
        ("user_id", "u1")
    ]
    track = {"type": "track", "event": "X", "userId": "u1", "previousId": "anon-9"}
    assert pairs(extract(track, CONFIG)) == [("user_id", "u1")]


def test_group_traits_describe_the_group_and_are_not_read() -> None:
    message = {
        "type": "group",
        "userId": "cust-1",
        "groupId": "company-5",
        "traits": {"email": "info@yritys.fi", "phone": "09 1234567"},
        "context": {"traits": {"email": "anna@yritys.fi"}},
    }
    assert pairs(extract(message, CONFIG)) == [
        ("user_id", "cust-1"),
        ("email", "anna@yritys.fi"),
    ]


def test_duplicates_across_sources_collapse_to_one() -> None:
    message = {
        "type": "identify",
        "userId": "u1",
        "traits": {"email": "Anna@Kauppa.fi", "loyalty_card": "12-34", "loyaltyCard": "1234"},
        "context": {"traits": {"email": " anna@kauppa.fi", "phone": "+358401234567"}},
        "properties": {"phone": "040 1234567", "email": "ANNA@KAUPPA.FI"},
    }
    assert pairs(extract(message, CONFIG)) == [
        ("user_id", "u1"),
        ("email", "anna@kauppa.fi"),
        ("phone", "+358401234567"),
        ("loyalty_card", "1234"),
    ]


def test_same_priority_identifiers_are_ordered_by_value() -> None:
    message = {
        "traits": {"email": "zoe@kauppa.fi"},
        "context": {"traits": {"email": "adam@kauppa.fi"}},
        "properties": {"receipt_email": "mia@kauppa.fi"},
        "anonymousId": "a",
    }
    assert pairs(extract(message, CONFIG)) == [
        ("email", "adam@kauppa.fi"),
        ("email", "mia@kauppa.fi"),
        ("email", "zoe@kauppa.fi"),
        ("anonymous_id", "a"),
    ]


def test_junk_values_are_skipped_and_good_ones_kept() -> None:
    message = {
        "type": "identify",
        "userId": "undefined",
        "anonymousId": "anon-5",
        "traits": {"email": "test@test.com", "phone": "n/a", "loyalty_card": "0000-0000"},
        "properties": {"email": "anna@kauppa.fi"},
    }
    assert pairs(extract(message, CONFIG)) == [
        ("email", "anna@kauppa.fi"),
        ("anonymous_id", "anon-5"),
    ]


# --- shared devices ---------------------------------------------------------------------------


def test_device_configured_as_shared_marks_device_and_anonymous_id() -> None:
    config = IdentityConfig(shared_devices=frozenset({" tablet-hki-01 "}))
    message = {
        "userId": "u1",
        "anonymousId": "kiosk-browser",
        "context": {"device": {"id": "tablet-hki-01"}},
    }
    assert extract(message, config) == [
        Identifier("user_id", "u1", shared=False),
        Identifier("device_id", "tablet-hki-01", shared=True),
        Identifier("anonymous_id", "kiosk-browser", shared=True),
    ]


@pytest.mark.parametrize("flag", [True, "true", " TRUE "])
def test_device_flagged_shared_in_context(flag: object) -> None:
    message = {"anonymousId": "a1", "context": {"device": {"id": "d1", "shared": flag}}}
    assert all(i.shared for i in extract(message, CONFIG))
    assert len(extract(message, CONFIG)) == 2


@pytest.mark.parametrize("device_type", ["pos", "till", "kiosk", "store_tablet", "Store Tablet"])
def test_shared_device_types(device_type: str) -> None:
    message = {"anonymousId": "a1", "context": {"device": {"id": "d1", "type": device_type}}}
    assert [(i.type, i.shared) for i in extract(message, CONFIG)] == [
        ("device_id", True),
        ("anonymous_id", True),
    ]


def test_shared_device_without_id_still_shares_its_anonymous_id() -> None:
    message = {"anonymousId": "a1", "context": {"device": {"type": "kiosk"}}}
    assert extract(message, CONFIG) == [Identifier("anonymous_id", "a1", shared=True)]


@pytest.mark.parametrize("device", [{"id": "d1", "type": "ios"}, {"id": "d1", "shared": False}])
def test_personal_devices_are_not_shared(device: dict[str, Any]) -> None:
    message = {"anonymousId": "a1", "context": {"device": device}}
    assert not any(i.shared for i in extract(message, CONFIG))


def test_shared_alias_previous_anonymous_id_is_shared_too() -> None:
    message = {
        "type": "alias",
        "previousId": "kiosk-anon",
        "userId": "u1",
        "context": {"device": {"type": "kiosk"}},
    }
    assert extract(message, CONFIG) == [
        Identifier("user_id", "u1"),
        Identifier("anonymous_id", "kiosk-anon", shared=True),
    ]


# --- configured types -------------------------------------------------------------------------


def test_extra_trait_types_are_extracted_with_their_priority() -> None:
    config = IdentityConfig(
        types=(*DEFAULT_TYPES, IdentifierType("crm_id", 8, 1, "Id in the CRM.")),
        extra_trait_types={"crm_id": "crm_id", "mobile": "phone"},
    )
    message = {
        "type": "identify",
        "anonymousId": "a1",
        "traits": {"crm_id": " CRM-00017 ", "mobile": "040 1234567"},
        "context": {"traits": {"crm_id": "null"}},
    }
    assert pairs(extract(message, config)) == [
        ("phone", "+358401234567"),
        ("anonymous_id", "a1"),
        ("crm_id", "CRM-00017"),
    ]
    assert normalise("crm_id", "crm-1", config) == "crm-1"


def test_type_removed_from_config_is_not_extracted() -> None:
    config = IdentityConfig(types=tuple(t for t in DEFAULT_TYPES if t.name != "anonymous_id"))
    message = {"userId": "u1", "anonymousId": "a1", "type": "alias", "previousId": "a0"}
    assert pairs(extract(message, config)) == [("user_id", "u1")]


# --- robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        None,
        [],
        "identify",
        42,
        {},
        {"type": ["alias"], "previousId": {"x": 1}},
        {"userId": {"id": 1}, "anonymousId": ["a"], "previousId": None},
        {"userId": 10**5000, "anonymousId": 10**40},
        {"context": "web"},
        {"context": {"device": ["d1"], "traits": "anna@kauppa.fi"}},
        {"context": {"device": {"id": {"nested": True}, "type": 5, "shared": [True]}}},
        {"traits": ["email", "anna@kauppa.fi"], "properties": None},
        {"traits": {"email": ["anna@kauppa.fi"], "phone": {"n": 1}, "loyalty_card": 3.0}},
        {"properties": {"email": "@" * 10_000, "phone": "9" * 10_000}},
        {"traits": {"email": "a\u200b@kauppa.fi", "phone": "\x00040 1234567"}},
    ],
)
def test_extract_never_raises_on_malformed_messages(message: Any) -> None:
    found = extract(message, CONFIG)
    assert isinstance(found, list)
    assert all(isinstance(i, Identifier) for i in found)
    # None of the malformed values above is a usable identifier, except a plain int id.
    assert all(i.value == str(10**40) for i in found)
