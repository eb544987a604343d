"""HTTP routes of the channels: the links in messages and the SMS gateway's callbacks.

- ``GET /u/{token}`` asks, ``POST /u/{token}`` unsubscribes (one click, RFC 8058: mail
  providers POST ``List-Unsubscribe=One-Click``; the page's button posts the same).
- ``GET /l/{token}`` records a click and redirects to the link's target.
- ``POST /v1/channels/sms/reports`` and ``POST /v1/channels/sms/inbound`` take the
  gateway's delivery reports and the texts people send, with the gateway's bearer token.

Links are signed tokens (`polku.channels.links`), so these routes need no login: a link
that Polku did not sign is refused. Handlers translate: request → `actions` → response.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from polku.access.actions import DEFAULT_WORKSPACE
from polku.channels import actions, pages
from polku.channels.links import (
    StatusLink,
    TrackedLink,
    UnsubscribeLink,
    read_status,
    read_tracked,
    read_unsubscribe,
)
from polku.channels.secret import channel_secret
from polku.errors import InvalidField, NotFound, PayloadTooLarge, PolkuError, Unauthorized
from polku.http import json_response, runtime

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["channels"])

_MAX_FORM: Final = 4096
_HINT: Final = "Copy the whole link from the message; a link edited by hand is refused."
Token = Annotated[str, Path(max_length=2000, description="The signed token of the link.")]


def _secret(request: Request) -> str:
    state = request.app.state
    secret: str | None = getattr(state, "channel_secret", None)
    if secret is None:
        secret = state.channel_secret = channel_secret(runtime(request).settings)
    return secret


def _invalid_link(what: str) -> NotFound:
    return NotFound(
        f"This {what} link is not one Polku made, or it was changed.",
        field="token",
        hint=_HINT,
        code="invalid_link",
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _error(request: Request, exc: PolkuError, locale: str = "") -> Response:
    """The error as a page for a browser, else as the API's JSON error."""
    if not _wants_html(request):
        raise exc
    langs = pages.languages(locale, request.headers.get("accept-language"))
    return HTMLResponse(pages.error_page(langs, exc.code, exc.message), exc.status)


def _unsubscribe_link(request: Request, token: str) -> UnsubscribeLink:
    link = read_unsubscribe(_secret(request), token)
    if link is None:
        raise _invalid_link("unsubscribe")
    return link


# -- unsubscribe -----------------------------------------------------------------------------


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: Token) -> Response:
    """The question, in the person's language, with a one-button form; asking changes
    nothing (mail scanners open links). 404 `invalid_link` for a link Polku did not sign."""
    try:
        link = _unsubscribe_link(request, token)
    except PolkuError as exc:
        return _error(request, exc)
    langs = pages.languages(link.locale, request.headers.get("accept-language"))
    return HTMLResponse(
        pages.confirm_page(langs, link.purpose, link.channel),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: Token) -> Response:
    """One-click unsubscribe: withdraws consent for the link's purpose on its channel
    (a ``Consent Updated`` event, source ``unsubscribe_link``) and answers a confirmation
    page. The body is RFC 8058's ``List-Unsubscribe=One-Click`` or the page's form."""
    locale = ""
    try:
        link = _unsubscribe_link(request, token)
        locale = link.locale
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > _MAX_FORM:
            raise PayloadTooLarge(
                f"An unsubscribe request's body must be at most {_MAX_FORM} bytes.",
                field="body",
                hint="Send List-Unsubscribe=One-Click (RFC 8058), or nothing.",
            )
        await actions.unsubscribe(runtime(request), link)
    except PolkuError as exc:
        return _error(request, exc, locale)
    langs = pages.languages(link.locale, request.headers.get("accept-language"))
    return HTMLResponse(
        pages.done_page(langs, link.purpose, link.channel),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


# -- tracked links ---------------------------------------------------------------------------


@router.get("/l/{token}", status_code=302, response_class=RedirectResponse)
async def follow_link(request: Request, token: Token) -> Response:
    """Records a ``Message Link Clicked`` event (send_id, url) for the link's profile and
    redirects (302) to its http(s) target. 404 `invalid_link` for a link Polku did not
    sign. A click that cannot be recorded (the profile was deleted) still redirects."""
    link: TrackedLink | None = read_tracked(_secret(request), token)
    if link is None:
        return _error(request, _invalid_link("tracked"))
    try:
        await actions.record_click(runtime(request), link)
    except PolkuError as exc:  # the person still gets where the link goes
        logger.warning("click on send %s not recorded: %s", link.send_id, exc.message)
    return RedirectResponse(
        link.url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


# -- the SMS gateway -------------------------------------------------------------------------


def _gateway(request: Request) -> None:
    expected = runtime(request).settings.sms_gateway_token.reveal()
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not expected:
        raise Unauthorized(
            "This Polku takes no SMS gateway callbacks: POLKU_SMS_GATEWAY_TOKEN is not set.",
            hint="Set POLKU_SMS_GATEWAY_TOKEN and configure the gateway to send it.",
        )
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(
            "The SMS gateway callback needs the gateway token.",
            hint="Send `Authorization: Bearer <POLKU_SMS_GATEWAY_TOKEN>`.",
        )


GatewayAuth = Annotated[None, Depends(_gateway)]
Workspace = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        description="The workspace the gateway's number belongs to (default: the default).",
    ),
]


class ReportIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    reference: StrictStr | None = Field(
        None, min_length=1, max_length=200, description="The reference Polku sent."
    )
    id: StrictStr | StrictInt | None = Field(None, description="The gateway's message id.")
    status: StrictStr = Field(
        pattern="^[A-Za-z_]{1,40}$", description="delivered, failed, expired, ..."
    )
    error: StrictStr | None = Field(None, max_length=500)


class InboundIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: StrictStr = Field(alias="from", min_length=1, max_length=40)
    to: StrictStr | None = Field(None, max_length=40)
    text: StrictStr = Field(max_length=2000)
    id: StrictStr | StrictInt | None = Field(None, description="The gateway's message id.")


def _provider_id(value: str | int | None) -> str:
    text = "" if value is None else str(value)
    if len(text) > 200:
        raise InvalidField(
            "id must be at most 200 characters.", field="id", hint="Send the gateway's id."
        )
    return text


@router.post("/v1/channels/sms/reports")
async def sms_report(
    request: Request,
    _auth: GatewayAuth,
    body: ReportIn,
    workspace: Workspace = DEFAULT_WORKSPACE,
    token: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """A delivery report: an ``SMS Delivery Reported`` event, on the person's timeline
    when the report came to the message's `status_url` (its signed `token`)."""
    link: StatusLink | None = None
    if token is not None:
        link = read_status(_secret(request), token)
        if link is None:
            raise InvalidField(
                "The token of this status URL is not one Polku made.",
                field="token",
                hint="Post reports to the status_url Polku sent with the message, unchanged.",
                code="invalid_link",
            )
    report = actions.DeliveryReport(
        status=body.status.lower(),
        reference=body.reference or "",
        provider_id=_provider_id(body.id),
        error=body.error or "",
    )
    receipt = await actions.record_delivery_report(runtime(request), workspace, report, link)
    return json_response({"accepted": True, "offset": receipt.offset})


@router.post("/v1/channels/sms/inbound")
async def sms_inbound(
    request: Request, _auth: GatewayAuth, body: InboundIn, workspace: Workspace = DEFAULT_WORKSPACE
) -> Response:
    """A text a person sent: an ``SMS Received`` event on the profile holding the sender's
    number (`context.channel` ``sms``); STOP or LOPETA also withdraws SMS marketing
    consent (`stopped` true)."""
    sms = actions.InboundSms(
        sender=body.sender, text=body.text, to=body.to or "", provider_id=_provider_id(body.id)
    )
    result = await actions.record_inbound_sms(runtime(request), workspace, sms)
    return json_response(
        {"accepted": True, "offset": result.received.offset, "stopped": result.stopped is not None}
    )
