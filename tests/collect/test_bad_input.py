"""Bad input gets a 4xx with a stable code, the field and what to do; never a 500.

In a batch the good events are kept and each bad one is reported by its index, and every
rejection lands in the dead-letter store, readable at GET /v1/debugger/rejections.
"""

from __future__ import annotations

import base64
import gzip
import random
import uuid
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from polku.access.actions import create_write_key, revoke_write_key
from polku.storage.engine import writing

if TYPE_CHECKING:
    from conftest import Polku  # the `polku` fixture of tests/conftest.py


def _mid() -> str:
    return str(uuid.uuid4())


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def _rejections(polku: Polku, **params: Any) -> list[dict[str, Any]]:
    response = polku.client.get(
        "/v1/debugger/rejections", params={"limit": 1000, **params}, headers=polku.admin
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["rejections"]
    return items


def _stored(polku: Polku, message_id: str) -> list[dict[str, Any]]:
    response = polku.client.get(
        "/v1/debugger/events", params={"messageId": message_id}, headers=polku.admin
    )
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u-1", "event": "Clicked", "messageId": _mid(), **fields}


# -- malformed requests -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_malformed_json(polku: Polku, path: str) -> None:
    response = polku.client.post(path, content=b'{"userId": "u-1", "event": ', auth=polku.auth)
    error = _error(response, 400, "invalid_json")
    assert "JSON" in error["message"]
    assert error["hint"]
    rejection = _rejections(polku, code="invalid_json")[0]
    assert rejection["endpoint"] == path.rsplit("/", 1)[1]
    assert rejection["payload"] == '{"userId": "u-1", "event": '  # the raw body, as text


def test_single_quotes_are_not_json(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/track", content=b"{'userId': 'u-1', 'event': 'A'}", auth=polku.auth
    )
    assert "double quotes" in _error(response, 400, "invalid_json")["hint"]


def test_invalid_utf8(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/track", content=b'{"userId": "\xff\xfe", "event": "A"}', auth=polku.auth
    )
    _error(response, 400, "invalid_json")


@pytest.mark.parametrize("path", ["/v1/identify", "/v1/batch", "/v1/b"])
def test_empty_body(polku: Polku, path: str) -> None:
    response = polku.client.post(path, content=b"", auth=polku.auth)
    assert "empty" in _error(response, 400, "invalid_json")["message"]


@pytest.mark.parametrize(
    ("body", "kind"), [(b"[]", "list"), (b'[{"type": "track"}]', "list"), (b'"hi"', "str")]
)
def test_body_that_is_not_an_object(polku: Polku, body: bytes, kind: str) -> None:
    response = polku.client.post("/v1/batch", content=body, auth=polku.auth)
    error = _error(response, 400, "invalid_body")
    assert kind in error["message"]
    assert "batch" in error["hint"]


def test_batch_that_is_not_an_array(polku: Polku) -> None:
    response = polku.send("/v1/batch", {"batch": {"type": "track"}})
    assert _error(response, 400, "invalid_batch")["field"] == "batch"
    response = polku.send("/v1/batch", {"events": []})
    assert _error(response, 400, "invalid_batch")["field"] == "batch"
    assert [r["code"] for r in _rejections(polku)][:2] == ["invalid_batch", "invalid_batch"]


def test_empty_batch(polku: Polku) -> None:
    _error(polku.send("/v1/batch", {"batch": []}), 400, "empty_batch")


def test_invalid_gzip(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/batch",
        content=orjson.dumps({"batch": [_track()]}),  # says gzip, is not
        headers={"Content-Encoding": "gzip"},
        auth=polku.auth,
    )
    error = _error(response, 400, "invalid_gzip")
    assert "Content-Encoding" in error["hint"]
    assert _rejections(polku, code="invalid_gzip")


def test_truncated_gzip(polku: Polku) -> None:
    body = gzip.compress(orjson.dumps({"batch": [_track() for _ in range(50)]}))
    response = polku.client.post(
        "/v1/batch",
        content=body[: len(body) // 2],
        headers={"Content-Encoding": "gzip"},
        auth=polku.auth,
    )
    assert "truncated" in _error(response, 400, "invalid_gzip")["message"]


def test_gzip_bomb(polku: Polku) -> None:
    # 64 MB of spaces compress to ~64 KB; the server stops inflating at its 4 MB limit.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = compressor.compress(b"{" + b" " * (64 * 1024 * 1024)) + compressor.flush()
    assert len(bomb) < 100_000
    response = polku.client.post(
        "/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}, auth=polku.auth
    )
    _error(response, 413, "payload_too_large")
    assert _rejections(polku, code="payload_too_large")


def test_unsupported_content_encoding(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/batch",
        content=zlib.compress(orjson.dumps({"batch": [_track()]})),
        headers={"Content-Encoding": "br"},
        auth=polku.auth,
    )
    _error(response, 400, "unsupported_encoding")


# -- write keys -------------------------------------------------------------------------


def test_missing_write_key(polku: Polku) -> None:
    response = polku.client.post("/v1/track", json={"userId": "u-1", "event": "A"})
    error = _error(response, 401, "missing_write_key")
    assert error["field"] == "writeKey"
    assert "polku keys create" in error["hint"]
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "auth",
    [
        {"auth": ("wk_doesnotexist", "")},
        {"headers": {"Authorization": "Basic !!!not-base64"}},
        {"auth": ("wk_" + "x" * 500, "")},
        {"auth": ("wk_nul\x00key", "")},
    ],
    ids=["unknown", "garbage-header", "overlong", "nul"],
)
def test_unknown_write_key(polku: Polku, auth: dict[str, Any]) -> None:
    response = polku.client.post("/v1/batch", json={"batch": [_track()]}, **auth)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] in ("unknown_write_key", "missing_write_key")
    assert response.json()["error"]["field"] == "writeKey"


def test_non_ascii_authorization_header(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/track",
        json={"userId": "u-1", "event": "A"},
        headers={"Authorization": b"Basic \xe9\xe9=="},
    )
    _error(response, 401, "missing_write_key")


def test_settings_document_for_a_malformed_key(polku: Polku) -> None:
    for key in ("a%00b", "k" * 5000):
        response = polku.client.get(f"/v1/projects/{key}/settings")
        _error(response, 404, "unknown_write_key")


def test_unknown_write_key_in_body(polku: Polku) -> None:
    response = polku.client.post("/v1/b", json={"batch": [_track()], "writeKey": "wk_nope"})
    error = _error(response, 401, "unknown_write_key")
    assert "wk_nope" in error["message"]
    # Visible to the admin (to spot a mistyped key) but without the payload, which may be
    # another workspace's data.
    rejection = _rejections(polku, code="unknown_write_key")[0]
    assert rejection["field"] == "writeKey"
    assert rejection["workspace_id"] is None
    assert rejection["payload"] is None


def test_revoked_write_key(polku: Polku) -> None:
    with writing(polku.runtime.engine) as conn:
        key = create_write_key(conn, "default", "app")
        other = create_write_key(conn, "default", "pos")
        revoke_write_key(conn, key)
    _error(polku.client.post("/v1/t", json=_track(), auth=(key, "")), 401, "unknown_write_key")
    assert polku.client.post("/v1/t", json=_track(), auth=(other, "")).status_code == 200


# -- single events ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"userId": ["u-1"]}, "invalid_field", "userId"),
        ({"userId": True}, "invalid_field", "userId"),
        ({"userId": None, "anonymousId": {"id": 1}}, "invalid_field", "anonymousId"),
        ({"userId": "u" * 300}, "invalid_field", "userId"),
        ({"userId": "u-\x001"}, "invalid_field", "userId"),
        ({"userId": None}, "missing_identity", "userId"),
        ({"userId": "   ", "anonymousId": ""}, "missing_identity", "userId"),
        ({"event": None}, "missing_event", "event"),
        ({"event": 42}, "missing_event", "event"),
        ({"event": "x" * 201}, "invalid_field", "event"),
        ({"event": "Clicked\x00"}, "invalid_field", "event"),
        ({"messageId": ["m"]}, "invalid_field", "messageId"),
        ({"messageId": "m" * 201}, "invalid_field", "messageId"),
        ({"messageId": "m-\x00"}, "invalid_field", "messageId"),
        ({"properties": ["a", "b"]}, "invalid_field", "properties"),
        ({"properties": "price=12"}, "invalid_field", "properties"),
        ({"context": 5}, "invalid_field", "context"),
        ({"traits": []}, "invalid_field", "traits"),
        ({"integrations": "all"}, "invalid_field", "integrations"),
        ({"context": {"channel": "fax"}}, "invalid_channel", "context.channel"),
        ({"context": {"channel": ["web"]}}, "invalid_channel", "context.channel"),
        ({"timestamp": 1700000000}, "invalid_timestamp", "timestamp"),
        ({"timestamp": "yesterday"}, "invalid_timestamp", "timestamp"),
        ({"timestamp": "0001-01-01T00:00:00+14:00"}, "invalid_timestamp", "timestamp"),
        ({"timestamp": "1900-01-01T00:00:00Z"}, "invalid_timestamp", "timestamp"),
        ({"originalTimestamp": "2024-13-45"}, "invalid_timestamp", "originalTimestamp"),
        ({"sentAt": ["now"]}, "invalid_timestamp", "sentAt"),
        (
            {"originalTimestamp": "9999-12-31T00:00:00Z", "sentAt": "1970-01-01T00:00:01Z"},
            "invalid_timestamp",
            "sentAt",
        ),
        ({"type": "page"}, "type_mismatch", "type"),
        ({"type": ["track"]}, "type_mismatch", "type"),
    ],
)
def test_bad_track_call(polku: Polku, fields: dict[str, Any], code: str, field: str) -> None:
    response = polku.send("/v1/track", {**_track(), **fields})
    error = _error(response, 400, code)
    assert error["field"] == field
    assert error["hint"]
    assert response.json()["success"] is False
    rejection = _rejections(polku)[0]
    assert (rejection["code"], rejection["field"], rejection["endpoint"]) == (code, field, "track")
    assert rejection["batch_index"] is None


def test_type_mismatch_says_where_to_post(polku: Polku) -> None:
    response = polku.send("/v1/track", {"type": "page", "userId": "u-1", "name": "Home"})
    assert "/v1/page" in _error(response, 400, "type_mismatch")["message"]


def test_group_and_alias_need_their_ids(polku: Polku) -> None:
    assert _error(polku.send("/v1/group", {"userId": "u-1"}), 400, "missing_field")["field"] == (
        "groupId"
    )
    no_previous = polku.send("/v1/alias", {"userId": "u-1"})
    assert _error(no_previous, 400, "missing_field")["field"] == "previousId"
    no_user = polku.send("/v1/alias", {"anonymousId": "a-1", "previousId": "a-0"})
    assert _error(no_user, 400, "missing_field")["field"] == "userId"


def test_page_name_must_be_a_string(polku: Polku) -> None:
    response = polku.send("/v1/page", {"anonymousId": "a-1", "name": {"title": "Home"}})
    assert _error(response, 400, "invalid_field")["field"] == "name"


def test_long_page_name_is_kept_whole(polku: Polku) -> None:
    message_id = _mid()
    name = "Talvitakit | " * 40  # a long document.title is a page name, not an error
    response = polku.send("/v1/page", {"anonymousId": "a-1", "name": name, "messageId": message_id})
    assert response.status_code == 200, response.text
    stored = _stored(polku, message_id)[0]
    assert stored["message"]["name"] == name
    assert stored["event"] == name[:200]


def test_deeply_nested_properties(polku: Polku) -> None:
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(400):
        inner["a"] = {}
        inner = inner["a"]
    response = polku.send("/v1/track", _track(properties=nested))
    assert "nested" in _error(response, 400, "invalid_event")["message"]


def test_wrong_typed_property_of_a_known_event(polku: Polku) -> None:
    body = _track(event="Product Viewed", properties={"product_id": "sku-1", "price": "12,90"})
    response = polku.send("/v1/track", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "properties.price"
    assert "price" in error["message"]
    rejection = _rejections(polku)[0]
    assert rejection["code"] == error["code"]
    assert rejection["field"] == "properties.price"
    assert rejection["payload"]["properties"]["price"] == "12,90"


def test_unknown_events_and_properties_are_kept(polku: Polku) -> None:
    message_id = _mid()
    body = _track(
        event="Sauna Booked", messageId=message_id, properties={"price": "12,90", "x": [1]}
    )
    assert polku.send("/v1/track", body).status_code == 200
    assert _stored(polku, message_id)[0]["message"]["properties"]["price"] == "12,90"


def test_unknown_type_in_a_batch(polku: Polku) -> None:
    response = polku.send(
        "/v1/batch",
        {"batch": [_track(type="purchase"), _track(type=None), _track(type=["track"])]},
    )
    body = response.json()
    assert response.status_code == 400
    assert [r["code"] for r in body["rejected"]] == ["unknown_type", "missing_type", "unknown_type"]
    assert all(r["field"] == "type" for r in body["rejected"])
    assert "identify" in body["rejected"][0]["message"]  # lists the valid types


# -- size limits ------------------------------------------------------------------------


def test_oversize_single_event(polku: Polku) -> None:
    body = _track(properties={"blob": "x" * (33 * 1024)})
    response = polku.send("/v1/track", body)
    error = _error(response, 413, "event_too_large")
    assert "32 KB" in error["hint"]
    assert _rejections(polku, code="event_too_large")


def test_oversize_event_in_a_batch_is_rejected_alone(polku: Polku) -> None:
    good = _track()
    big = _track(properties={"blob": "x" * (33 * 1024)})
    response = polku.send("/v1/batch", {"batch": [good, big]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "code": "event_too_large",
            "message": body["rejected"][0]["message"],
            "index": 1,
            "messageId": big["messageId"],
        }
    ]
    assert "32 KB" in body["rejected"][0]["message"]
    assert len(_stored(polku, good["messageId"])) == 1
    assert _stored(polku, big["messageId"]) == []
    rejection = _rejections(polku, code="event_too_large")[0]
    assert rejection["batch_index"] == 1
    assert rejection["message_id"] == big["messageId"]


def test_oversize_batch(polku: Polku) -> None:
    batch = [_track(properties={"blob": "x" * 20_000}) for _ in range(30)]  # ~600 KB
    response = polku.send("/v1/batch", {"batch": batch})
    error = _error(response, 413, "batch_too_large")
    assert "500 KB" in error["hint"]
    assert all(_stored(polku, m["messageId"]) == [] for m in batch[:3])  # nothing kept


def test_oversize_body_is_refused_before_reading_it_all(polku: Polku) -> None:
    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
        yield b'{"batch": ['
        for _ in range(80):
            yield b'{"type": "track", "userId": "u", "event": "' + b"x" * 65536 + b'"},'
        yield b"]}"

    response = polku.client.post("/v1/batch", content=chunks(), auth=polku.auth)
    _error(response, 413, "payload_too_large")
    assert _rejections(polku, code="payload_too_large")[0]["endpoint"] == "batch"


# -- batches: keep the good, report the bad by index ---------------------------------------


def test_partial_batch_keeps_valid_events_and_reports_each_invalid_one(polku: Polku) -> None:
    batch = [
        _track(),
        _track(userId=None),
        "not an object",
        _track(event="Product Viewed", properties={"price": "12,90"}),
        _track(properties=[1, 2]),
        {"type": "identify", "anonymousId": "a-1", "traits": {"plan": "gold"}},
        _track(timestamp="not a time"),
    ]
    response = polku.send("/v1/batch", {"batch": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["accepted"] == 2
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 6]
    assert (rejected[1]["code"], rejected[1]["field"]) == ("missing_identity", "userId")
    assert (rejected[2]["code"], rejected[2]["field"]) == ("invalid_event", "batch[2]")
    assert rejected[3]["field"] == "properties.price"
    assert (rejected[4]["code"], rejected[4]["field"]) == ("invalid_field", "properties")
    assert (rejected[6]["code"], rejected[6]["field"]) == ("invalid_timestamp", "timestamp")
    for index in (1, 3, 4, 6):
        assert rejected[index]["messageId"] == batch[index]["messageId"]  # type: ignore[index]
    for rejection in rejected.values():
        assert rejection["message"]
    assert len(_stored(polku, batch[0]["messageId"])) == 1  # type: ignore[index]

    stored = {r["batch_index"]: r for r in _rejections(polku) if r["endpoint"] == "batch"}
    assert sorted(stored) == [1, 2, 3, 4, 6]
    for index, rejection in rejected.items():
        assert stored[index]["code"] == rejection["code"]
        assert stored[index]["field"] == rejection["field"]
        assert stored[index]["message"] == rejection["message"]
        assert stored[index]["workspace_id"] == "default"
    assert stored[2]["payload"] == "not an object"
    assert stored[1]["payload"]["messageId"] == batch[1]["messageId"]  # type: ignore[index]


def test_all_invalid_batch_is_400_batch_rejected(polku: Polku) -> None:
    response = polku.send("/v1/batch", {"batch": [_track(userId=None), _track(event="")]})
    error = _error(response, 400, "batch_rejected")
    assert "2" in error["message"]
    assert "/v1/debugger/rejections" in error["hint"]
    body = response.json()
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (0, "missing_identity"),
        (1, "missing_event"),
    ]


def test_rejections_filter_and_page(polku: Polku) -> None:
    polku.send("/v1/batch", {"batch": [_track(userId=None) for _ in range(3)]})
    polku.send("/v1/track", _track(event=""))
    missing = _rejections(polku, code="missing_identity")
    assert [r["batch_index"] for r in missing] == [2, 1, 0]  # newest first
    page = _rejections(polku, limit=2)
    assert len(page) == 2
    older = _rejections(polku, limit=1000, before_id=page[-1]["id"])
    assert [r["id"] for r in older] == [r["id"] for r in _rejections(polku)][2:]


def test_rejections_of_hostile_values_are_stored(polku: Polku) -> None:
    # A NUL or an overlong messageId must not break the dead-letter store (PostgreSQL
    # refuses NUL in text and values wider than the column).
    bad = [
        _track(messageId="m-\x00-1", userId=None),
        _track(messageId="m" * 500, userId=None),
        _track(event="Clicked\x00"),
    ]
    response = polku.send("/v1/batch", {"batch": bad})
    assert response.status_code == 400, response.text
    stored = _rejections(polku)
    assert len(stored) == 3
    assert all(len(r["message_id"] or "") <= 200 for r in stored)


# -- junk identities ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "field", "shown"),
    [
        ({"userId": "null", "anonymousId": "undefined"}, "userId", "'null'"),
        ({"userId": "guest"}, "userId", "'guest'"),
        (
            {"userId": None, "anonymousId": "00000000-0000-0000-0000-000000000000"},
            "anonymousId",
            "'00000000",
        ),
        ({"userId": 0}, "userId", "'0'"),
    ],
)
def test_junk_identity_is_rejected(
    polku: Polku, ids: dict[str, Any], field: str, shown: str
) -> None:
    response = polku.send("/v1/track", _track(**ids))
    error = _error(response, 400, "junk_identity")
    assert error["field"] == field
    assert shown in error["message"]
    assert "anonymousId" in error["message"] and "userId" in error["message"]
    assert _rejections(polku, code="junk_identity")[0]["field"] == field


def test_junk_identity_in_a_batch_is_reported_by_index(polku: Polku) -> None:
    response = polku.send("/v1/batch", {"batch": [_track(), _track(userId="undefined")]})
    assert response.status_code == 200
    assert response.json()["rejected"][0]["index"] == 1
    assert response.json()["rejected"][0]["code"] == "junk_identity"


@pytest.mark.parametrize(
    "fields",
    [
        {"userId": "null", "anonymousId": "3f1c2a4e-anon"},  # the anonymousId is good
        {"userId": "undefined", "context": {"traits": {"email": "aino@kauppa.fi"}}},
        {"userId": "guest", "properties": {"loyalty_card": "1234 5678 90"}},
    ],
)
def test_junk_id_with_another_usable_identifier_is_kept(
    polku: Polku, fields: dict[str, Any]
) -> None:
    body = _track(**fields)
    assert polku.send("/v1/track", body).status_code == 200
    assert len(_stored(polku, body["messageId"])) == 1


def test_junk_id_on_a_shared_device_is_rejected(polku: Polku) -> None:
    # The till's device id is shared: it never identifies a person, so it does not count.
    body = _track(userId="n/a", context={"device": {"id": "till-3", "type": "pos"}})
    assert _error(polku.send("/v1/track", body), 400, "junk_identity")["field"] == "userId"


def test_junk_identify_with_email_trait_is_kept(polku: Polku) -> None:
    body = {"userId": "null", "traits": {"email": "aino@kauppa.fi"}, "messageId": _mid()}
    assert polku.send("/v1/identify", body).status_code == 200


# -- the debugger's own parameters ---------------------------------------------------------


def test_debugger_query_with_a_nul_character(polku: Polku) -> None:
    for path, params in (
        ("/v1/debugger/events", {"messageId": "a\x00b"}),
        ("/v1/debugger/rejections", {"code": "a\x00b"}),
        ("/v1/debugger/rejections", {"limit": "many"}),
        ("/v1/debugger/rejections", {"before_id": str(10**20)}),
        ("/v1/debugger/events", {"before_offset": str(10**20)}),
        ("/v1/debugger/events", {"before_offset": "-1"}),
    ):
        response = polku.client.get(path, params=params, headers=polku.admin)
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] == "invalid_field"


# -- fuzz: no input makes a 5xx ---------------------------------------------------------------


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 1e30, 1.5, -0.0, 1e308])
    if choice == 3:
        return rng.choice(["", " ", "null", "undefined", "guest", "0", "\x00", "a\x00b", "☃"])
    if choice == 4:
        return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(1, 40)))
    if choice == 5:
        return "x" * rng.choice([199, 200, 201, 255, 256, 301, 5000])
    if choice == 6:
        return rng.choice(
            [
                "2024-01-01T00:00:00Z",
                "2024-02-30T00:00:00Z",
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:59-14:00",
                "1969-12-31T23:59:59Z",
                "2024-06-01",
                "now",
            ]
        )
    if choice == 7:
        return rng.choice(["track", "identify", "page", "screen", "group", "alias", "batch"])
    if choice in (8, 9):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    nested = {}
    for _ in range(rng.randrange(5)):
        nested[rng.choice(_KEYS)] = _random_value(rng, depth + 1)
    return nested


_KEYS = [
    "type",
    "userId",
    "anonymousId",
    "messageId",
    "event",
    "name",
    "groupId",
    "previousId",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "channel",
    "price",
    "email",
    "device",
    "batch",
    "writeKey",
]


_SHORT = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}


def _random_message(rng: random.Random, kind: str | None = None) -> Any:
    """A plausible message with up to two fields replaced by random values."""
    if rng.random() < 0.1:
        return _random_value(rng)
    kind = kind or rng.choice(["track", "identify", "page", "screen", "group", "alias"])
    message: dict[str, Any] = {
        "type": kind,
        "userId": f"u-{rng.randrange(50)}",
        "event": rng.choice(["Product Viewed", "Order Completed", "Clicked", "Store Visited"]),
        "messageId": _mid(),
        "properties": {"price": 12.9, "product_id": "sku-1", "store_id": "HEL-01"},
        "groupId": "g-1",
        "previousId": f"a-{rng.randrange(50)}",
    }
    for _ in range(rng.choice([0, 0, 1, 2])):
        message[rng.choice(_KEYS)] = _random_value(rng)
    if rng.random() < 0.2:
        message["context"] = {"channel": _random_value(rng), "device": _random_value(rng)}
    return message


def _random_request(rng: random.Random, write_key: str) -> tuple[str, bytes, dict[str, str]]:
    path = rng.choice(["/v1/batch", "/v1/b", "/v1/track", *(f"/v1/{short}" for short in _SHORT)])
    kind = _SHORT.get(path.rsplit("/", 1)[1], "track" if path == "/v1/track" else None)
    shape = rng.randrange(8)
    if shape == 0:
        body = rng.randbytes(rng.randrange(0, 300))
    elif shape == 1:
        whole = orjson.dumps({"batch": [_random_message(rng) for _ in range(3)]})
        body = whole[: rng.randrange(len(whole))]
    elif shape == 2:
        body = orjson.dumps(_random_value(rng))
    elif kind is None:
        batch: Any = [_random_message(rng) for _ in range(rng.randrange(1, 6))]
        if rng.random() < 0.1:
            batch = _random_value(rng)
        envelope: dict[str, Any] = {"batch": batch}
        if rng.random() < 0.3:
            envelope["sentAt"] = _random_value(rng)
        if rng.random() < 0.3:
            envelope["context"] = _random_value(rng)
        if rng.random() < 0.3:
            envelope["writeKey"] = rng.choice([write_key, _random_value(rng)])
        body = orjson.dumps(envelope)
    else:
        body = orjson.dumps(_random_message(rng, kind))
    headers: dict[str, str] = {"Content-Type": rng.choice(["application/json", "text/plain"])}
    auth = rng.randrange(6)
    if auth < 4:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    elif auth == 4:
        headers["Authorization"] = rng.choice(
            ["Basic ", "Basic ====", "Bearer x", "Basic " + "A" * 300, "Basic AAAA"]
        )
    encoding = rng.randrange(8)
    if encoding == 0:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif encoding == 1:
        headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "GZIP", " identity "])
    return path, body, headers


def test_fuzzed_requests_never_get_a_5xx(polku: Polku) -> None:
    rng = random.Random(20261122)
    statuses: dict[int, int] = {}
    refused = 0
    for _ in range(300):
        path, body, headers = _random_request(rng, polku.write_key)
        response = polku.client.post(path, content=body, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (path, body[:300], headers, response.text)
        payload = response.json()
        if response.status_code >= 400:
            refused += 1
            assert isinstance(payload["error"]["code"], str), payload
            assert payload["error"]["message"]
        else:
            assert payload["success"] is True
            for rejection in payload.get("rejected", []):
                assert rejection["code"] and rejection["message"]
    # The generator reaches both sides: accepted requests and refused ones.
    assert statuses.get(200, 0) > 30 and refused > 100, statuses
    # Every refused request left a dead letter (a partly rejected batch leaves several).
    assert len(_rejections(polku)) >= refused
