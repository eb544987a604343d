"""The SMS gateway's callbacks on SQLite and PostgreSQL, with the pipeline running: the
gateway token is required; a delivery report becomes an event (on the person's timeline
when it came to the message's status URL); a reply lands on the timeline of the profile
holding the number, as a two-way conversation on the sms channel; STOP and LOPETA
withdraw SMS marketing consent, also from a number Polku did not know yet."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Polku
from polku.channels.base import Message
from polku.channels.registry import Channels
from polku.channels.sms import SmsChannel
from polku.settings import Settings

GATEWAY_TOKEN = "gw-token-0123456789abcdef"
PHONE = "+358401234567"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(
        sms_gateway_token=Settings.build(sms_gateway_token=GATEWAY_TOKEN).sms_gateway_token,
        public_url="https://polku.example.fi",
    )


def gateway(polku: Polku, path: str, body: Any, **params: Any) -> Any:
    return polku.client.post(
        f"/v1/channels/sms/{path}",
        json=body,
        params=params,
        headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
    )


def get(polku: Polku, path: str, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == 200, response.text
    return response.json()


def shopper(polku: Polku) -> str:
    response = polku.send(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": "u-anna",
                    "messageId": f"m-{uuid.uuid4().hex}",
                    "traits": {
                        "phone": "040 123 4567",
                        "consent": {"marketing": {"sms": True, "email": True}},
                    },
                }
            ]
        },
    )
    assert response.status_code == 200, response.text
    polku.settle()
    found: str = get(polku, "/v1/profiles/lookup", type="phone", value=PHONE)["profile_id"]
    return found


def sms_consent(polku: Polku, profile_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get(polku, f"/v1/profiles/{profile_id}/consent")["consent"]["marketing"]
    return found


def test_the_gateway_token_is_required(polku: Polku) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": GATEWAY_TOKEN}):
        for path in ("reports", "inbound"):
            response = polku.client.post(
                f"/v1/channels/sms/{path}", json={"status": "delivered"}, headers=headers
            )
            assert response.status_code == 401, response.text
            error = response.json()["error"]
            assert error["code"] == "unauthorized"
            assert "POLKU_SMS_GATEWAY_TOKEN" in error["hint"]


def test_a_reply_joins_the_conversation_and_stop_withdraws_consent(polku: Polku) -> None:
    person = shopper(polku)
    reply = gateway(
        polku,
        "inbound",
        {"from": PHONE, "to": "+358500000000", "text": "Onko kokoa M?", "id": "in-1"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["stopped"] is False
    polku.settle()
    [received] = get(polku, f"/v1/profiles/{person}/timeline", event="SMS Received")["events"]
    assert received["channel"] == "sms"
    assert received["message"]["properties"]["text"] == "Onko kokoa M?"
    assert received["message"]["properties"]["from"] == PHONE
    assert sms_consent(polku, person)["sms"]["granted"] is True
    # the gateway delivering the same message twice records it once
    assert (
        gateway(
            polku, "inbound", {"from": PHONE, "text": "Onko kokoa M?", "id": "in-1"}
        ).status_code
        == 200
    )
    polku.settle()
    assert len(get(polku, f"/v1/profiles/{person}/timeline", event="SMS Received")["events"]) == 1

    stop = gateway(polku, "inbound", {"from": "040 123 4567", "text": "LOPETA", "id": "in-2"})
    assert stop.status_code == 200, stop.text
    assert stop.json()["stopped"] is True
    polku.settle()
    consent = sms_consent(polku, person)
    assert consent["sms"]["granted"] is False
    assert consent["sms"]["source"] == "sms_reply"
    assert consent["email"]["granted"] is True
    texts = [
        e["message"]["properties"]["text"]
        for e in get(polku, f"/v1/profiles/{person}/timeline", event="SMS Received")["events"]
    ]
    assert texts == ["LOPETA", "Onko kokoa M?"]  # newest first
    # the replies added no identifier: the profile is still one person's
    ids = get(polku, f"/v1/profiles/{person}/identifiers")["identifiers"]
    assert [i["value"] for i in ids["phone"]] == [PHONE]
    assert all(i["value"] != "polku-channels" or i["shared"] for i in ids.get("anonymous_id", []))


def test_stop_from_a_number_polku_did_not_know(polku: Polku) -> None:
    stop = gateway(polku, "inbound", {"from": "+358409998877", "text": "Stop."})
    assert stop.status_code == 200, stop.text
    assert stop.json()["stopped"] is True
    polku.settle()
    stranger = get(polku, "/v1/profiles/lookup", type="phone", value="+358409998877")
    assert stranger["consent"]["marketing"]["sms"]["granted"] is False
    assert stranger["consent"]["marketing"]["sms"]["source"] == "sms_reply"
    assert stranger["channels"] == {"sms": 2}


def test_delivery_reports(polku: Polku, tmp_path: Path) -> None:
    person = shopper(polku)
    channels = Channels.from_settings(polku.runtime.settings)
    assert isinstance(channels.sms, SmsChannel)
    body = channels.sms.body(
        Message(
            channel="sms",
            to=PHONE,
            text="Hei!",
            idempotency_key="journey:x:v1:p:sms",
            workspace_id="default",
            profile_id=person,
        )
    )
    status_url: str = body["status_url"]
    query = status_url.split("?", 1)[1]
    token = query.removeprefix("token=")
    report = gateway(polku, "reports", {"id": "m-77", "status": "DELIVERED"}, token=token)
    assert report.status_code == 200, report.text
    polku.settle()
    [event] = get(polku, f"/v1/profiles/{person}/timeline", event="SMS Delivery Reported")["events"]
    assert event["channel"] == "sms"
    properties = event["message"]["properties"]
    assert properties == {
        "reference": "journey:x:v1:p:sms",
        "provider_id": "m-77",
        "status": "delivered",
    }

    # to the fixed URL: an event about no customer, keyed by the reference
    plain = gateway(
        polku, "reports", {"reference": "journey:y", "status": "failed", "error": "absent"}
    )
    assert plain.status_code == 200, plain.text
    polku.settle()
    [logged] = [
        e
        for e in polku.runtime.log.read(0, 1000)
        if e.event == "SMS Delivery Reported" and e.partition_key == "sms:journey:y"
    ]
    message = orjson.loads(logged.payload)
    assert message["properties"] == {
        "reference": "journey:y",
        "status": "failed",
        "error": "absent",
    }
    assert message["context"]["channel"] == "sms"


@pytest.mark.parametrize(
    ("path", "body", "params", "status", "code", "field"),
    [
        ("reports", {"id": "m-1"}, {}, 400, "invalid_field", "status"),
        ("reports", {"id": "m-1", "status": "de livered"}, {}, 400, "invalid_field", "status"),
        ("reports", {"status": "delivered"}, {}, 400, "invalid_field", "reference"),
        (
            "reports",
            {"id": "m-1", "status": "failed"},
            {"token": "forged.x"},
            400,
            "invalid_link",
            "token",
        ),
        (
            "reports",
            {"id": "m-1", "status": "failed"},
            {"workspace": "nope"},
            404,
            "not_found",
            "workspace",
        ),
        ("reports", [1, 2], {}, 400, "invalid_field", None),
        ("inbound", {"from": "not a phone", "text": "hi"}, {}, 400, "invalid_field", "from"),
        ("inbound", {"from": PHONE}, {}, 400, "invalid_field", "text"),
        ("inbound", {"from": 358401234567, "text": "hi"}, {}, 400, "invalid_field", "from"),
        (
            "inbound",
            {"from": PHONE, "text": "hi"},
            {"workspace": "nope"},
            404,
            "not_found",
            "workspace",
        ),
    ],
)
def test_bad_callbacks(
    polku: Polku,
    path: str,
    body: Any,
    params: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = gateway(polku, path, body, **params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error.get("field") == field
    assert error.get("hint")


def test_invalid_json(polku: Polku) -> None:
    response = polku.client.post(
        "/v1/channels/sms/inbound",
        content=b"{not json",
        headers={"Authorization": f"Bearer {GATEWAY_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
