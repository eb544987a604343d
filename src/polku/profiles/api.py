"""HTTP routes of the profiles package: one profile, lookup, search, timeline and consent.

Every route needs an admin token and sees only its workspace. A profile id that was merged
into another profile keeps working: the answer is the surviving profile, with
``redirected_from`` naming the id that was asked for (200, not a redirect, so a client
needs no second request and sees the merge). Handlers translate: they call
`polku.profiles.queries` and `polku.profiles.actions` and shape the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from polku.errors import InvalidField, NotFound
from polku.events import to_iso
from polku.http import AdminWorkspace, runtime
from polku.identity.api import IdentifierSeen
from polku.identity.queries import KnownIdentifier, unknown_profile
from polku.profiles.actions import set_consent
from polku.profiles.queries import (
    ConsentEntry,
    Profile,
    ProfileSummary,
    TimelineEvent,
    TimelineFilter,
    consent_of,
    find_by_identifier,
    get_profile,
    search,
    timeline,
)
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["profiles"])

REQUESTED_BY = "admin_api"
"""Who asked for a consent change made through this API (recorded on its event)."""

# -- response and request shapes ----------------------------------------------------------


class ConsentOut(BaseModel):
    granted: bool
    at: str = Field(description="Event time of the answer (ISO-8601); the newest answer wins.")
    source: str = Field(
        description="Where it was given: the `source` of a Consent Updated event, or the "
        "message type (`identify`) for consent sent in traits."
    )
    message_id: str = Field(description="messageId of the event that recorded it.")
    source_id: str = Field(description="The write key's source that sent it; empty for Polku.")


ConsentMap = dict[str, dict[str, ConsentOut]]
_CONSENT_DOC = "By purpose, then channel; channel `*` answers for every channel."


class ProfileOut(BaseModel):
    profile_id: str = Field(description="The profile that holds the data now.")
    redirected_from: str | None = Field(
        description="The id asked for, when it was merged into `profile_id`; else null."
    )
    identifiers: dict[str, list[IdentifierSeen]] = Field(
        description="By identifier type, strongest type first."
    )
    traits: dict[str, Any] = Field(description="Last-write-wins by event time, per trait.")
    traits_updated_at: dict[str, str] = Field(
        description="Event time (ISO-8601) of the value each trait holds."
    )
    consent: ConsentMap = Field(description=_CONSENT_DOC)
    channels: dict[str, int] = Field(description="Events per channel (web, app, store, ...).")
    event_count: int
    order_count: int = Field(description="Order Completed and POS Order Completed events.")
    first_seen: str
    last_seen: str


class IdentifierRef(BaseModel):
    type: str
    value: str = Field(description="The value as normalised for matching.")


class LookupOut(ProfileOut):
    matched: IdentifierRef = Field(description="The identifier that found the profile.")


class TimelineEventOut(BaseModel):
    offset: int = Field(description="Position in the log.")
    message_id: str
    type: str
    event: str | None = Field(description="Track event name, or page/screen name.")
    channel: str | None
    store_id: str | None
    timestamp: str = Field(description="Event time (ISO-8601).")
    received_at: str
    message: dict[str, Any] = Field(description="The message as stored in the log.")


class TimelineOut(BaseModel):
    profile_id: str
    redirected_from: str | None
    events: list[TimelineEventOut] = Field(description="Newest event time first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class ProfileSummaryOut(BaseModel):
    profile_id: str
    name: str | None
    email: str | None
    phone: str | None
    first_seen: str
    last_seen: str
    event_count: int
    order_count: int
    matched: str = Field(
        description="Why it matched: an identifier type (exact match), `name`, `email` or "
        "`phone` (starts with the text), `contains`, or `recent` when no text was given."
    )


class SearchOut(BaseModel):
    profiles: list[ProfileSummaryOut]


class ConsentOutView(BaseModel):
    profile_id: str
    redirected_from: str | None
    consent: ConsentMap = Field(description=_CONSENT_DOC)


class ConsentRequest(BaseModel):
    purpose: str = Field(
        min_length=1, max_length=100, description="What it is for, e.g. `marketing`."
    )
    channel: str = Field(
        default="*",
        description="web, app, store, chat, email, sms or phone; `*` (the default) for all.",
    )
    granted: StrictBool = Field(description="true when given, false when withdrawn.")
    source: str = Field(
        default="api",
        min_length=1,
        max_length=200,
        description="Where the person gave it, e.g. `preference_centre`, `store`, `checkout`.",
    )


class ConsentChanged(ConsentOutView):
    status: Literal["applied", "pending"] = Field(
        description="pending: recorded, but the pipeline has not applied it yet (HTTP 202)."
    )
    offset: int = Field(description="Log offset of the Consent Updated event.")


# -- shaping ------------------------------------------------------------------------------


def _identifier(found: KnownIdentifier) -> IdentifierSeen:
    return IdentifierSeen(
        value=found.value, first_seen=to_iso(found.first_seen), shared=found.shared
    )


def _consent(consent: dict[str, dict[str, ConsentEntry]]) -> ConsentMap:
    return {
        purpose: {
            channel: ConsentOut(
                granted=entry.granted,
                at=to_iso(entry.at),
                source=entry.source,
                message_id=entry.message_id,
                source_id=entry.source_id,
            )
            for channel, entry in by_channel.items()
        }
        for purpose, by_channel in consent.items()
    }


def _profile_fields(profile: Profile) -> dict[str, Any]:
    return {
        "profile_id": profile.profile_id,
        "redirected_from": profile.redirected_from,
        "identifiers": {
            kind: [_identifier(i) for i in found] for kind, found in profile.identifiers.items()
        },
        "traits": profile.traits,
        "traits_updated_at": {k: to_iso(v) for k, v in profile.trait_times.items()},
        "consent": _consent(profile.consent),
        "channels": profile.channels,
        "event_count": profile.event_count,
        "order_count": profile.order_count,
        "first_seen": to_iso(profile.first_seen),
        "last_seen": to_iso(profile.last_seen),
    }


def _summary(found: ProfileSummary) -> ProfileSummaryOut:
    return ProfileSummaryOut(
        profile_id=found.profile_id,
        name=found.name,
        email=found.email,
        phone=found.phone,
        first_seen=to_iso(found.first_seen),
        last_seen=to_iso(found.last_seen),
        event_count=found.event_count,
        order_count=found.order_count,
        matched=found.matched,
    )


def _event(found: TimelineEvent) -> TimelineEventOut:
    return TimelineEventOut(
        offset=found.offset,
        message_id=found.message_id,
        type=found.type,
        event=found.event,
        channel=found.channel,
        store_id=found.store_id,
        timestamp=to_iso(found.timestamp),
        received_at=to_iso(found.received_at),
        message=found.message,
    )


def _missing(name: str) -> InvalidField:
    return InvalidField(
        f"The query parameter {name} is missing.",
        field=name,
        hint="Call /v1/profiles/lookup?type=email&value=anna@example.fi.",
    )


def _consent_view(rt: Runtime, workspace: str, profile_id: str) -> ConsentOutView:
    with translate_errors("reading consent"), rt.engine.connect() as conn:
        found = consent_of(conn, workspace, profile_id)
    if found is None:
        raise unknown_profile(profile_id)
    holder, consent = found
    return ConsentOutView(
        profile_id=holder,
        redirected_from=profile_id if holder != profile_id else None,
        consent=_consent(consent),
    )


# -- routes (the fixed path /lookup before /{profile_id}) --------------------------------


@router.get("/v1/profiles", response_model=SearchOut)
def search_profiles(
    request: Request,
    workspace: AdminWorkspace,
    q: Annotated[
        str | None,
        Query(
            description="Text to find: a name, email or phone (start or part of it, any "
            "case), or an exact identifier (user id, loyalty card, phone in any format). "
            "Leave out for the most recently seen profiles."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchOut:
    """Find profiles for the console's search box: exact identifier matches first, then
    names, emails and phones starting with the text, then those containing it. Merged
    profiles are left out (their surviving profile is found instead)."""
    rt = runtime(request)
    with translate_errors("searching profiles"), rt.engine.connect() as conn:
        found = search(conn, workspace, q, limit, rt.identity)
    return SearchOut(profiles=[_summary(p) for p in found])


@router.get(
    "/v1/profiles/lookup",
    response_model=LookupOut,
    responses={
        400: {"description": "Unknown identifier type, or a value that is never an id."},
        404: {"description": "No profile holds this identifier."},
    },
)
def lookup_profile(
    request: Request,
    workspace: AdminWorkspace,
    type: Annotated[
        str | None,
        Query(description="Identifier type: user_id, email, phone, loyalty_card, ... "),
    ] = None,
    value: Annotated[
        str | None,
        Query(description="As the customer gave it: case, spaces and phone format are ignored."),
    ] = None,
) -> LookupOut:
    """The profile holding an identifier, e.g. the email a customer gives on the phone or the
    loyalty card scanned at a till. The value is normalised as identity resolution does."""
    if type is None or not type.strip():
        raise _missing("type")
    if value is None or not value.strip():
        raise _missing("value")
    rt = runtime(request)
    with translate_errors("looking up a profile"), rt.engine.connect() as conn:
        found = find_by_identifier(conn, workspace, type, value, rt.identity)
        profile = None if found is None else get_profile(conn, workspace, found[0], rt.identity)
    if found is None or profile is None:
        raise NotFound(
            f"No profile holds the {type.strip()[:64]} {value.strip()[:80]!r}.",
            field="value",
            hint="Check the value, or search with GET /v1/profiles?q=...; a new identifier "
            "is known once the pipeline has processed the event that carried it.",
        )
    _, kind, normalised = found
    return LookupOut(**_profile_fields(profile), matched=IdentifierRef(type=kind, value=normalised))


@router.get(
    "/v1/profiles/{profile_id}",
    response_model=ProfileOut,
    responses={404: {"description": "No such profile in this workspace."}},
)
def read_profile(profile_id: str, request: Request, workspace: AdminWorkspace) -> ProfileOut:
    """One person's 360° view: identifiers, traits, consent, channels used, counts, and first
    and last seen. For an id that was merged into another profile, answers with the surviving
    profile and sets `redirected_from` to the id asked for."""
    rt = runtime(request)
    with translate_errors("reading a profile"), rt.engine.connect() as conn:
        profile = get_profile(conn, workspace, profile_id, rt.identity)
    if profile is None:
        raise unknown_profile(profile_id)
    return ProfileOut(**_profile_fields(profile))


@router.get(
    "/v1/profiles/{profile_id}/timeline",
    response_model=TimelineOut,
    responses={
        400: {"description": "A bad filter value or cursor (the field is named)."},
        404: {"description": "No such profile in this workspace."},
    },
)
def read_timeline(
    profile_id: str,
    request: Request,
    workspace: AdminWorkspace,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    channel: Annotated[
        list[str] | None,
        Query(description="Only these channels; repeat or comma-separate (web,store)."),
    ] = None,
    event: Annotated[
        list[str] | None,
        Query(description="Only these event names (track) or page names; may repeat."),
    ] = None,
    type: Annotated[
        list[str] | None,
        Query(description="Only these message types (track, page, identify, ...)."),
    ] = None,
    store_id: Annotated[list[str] | None, Query(description="Only these stores.")] = None,
    since: Annotated[
        str | None, Query(description="From this event time (ISO-8601 or epoch ms), inclusive.")
    ] = None,
    until: Annotated[
        str | None, Query(description="Before this event time (ISO-8601 or epoch ms).")
    ] = None,
) -> TimelineOut:
    """Everything the person did on every channel (web, app, store, ...), newest first, with
    each message as stored. Late events (a till that was offline) appear at their event
    time. Page with `next_cursor`; the cursor stays valid while new events arrive."""
    only = TimelineFilter.build(
        channels=channel or (),
        events=event or (),
        types=type or (),
        store_ids=store_id or (),
        since=since,
        until=until,
    )
    rt = runtime(request)
    with translate_errors("reading a timeline"), rt.engine.connect() as conn:
        page = timeline(conn, workspace, profile_id, limit=limit, cursor=cursor, only=only)
    if page is None:
        raise unknown_profile(profile_id)
    return TimelineOut(
        profile_id=page.profile_id,
        redirected_from=page.redirected_from,
        events=[_event(e) for e in page.events],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/v1/profiles/{profile_id}/consent",
    response_model=ConsentOutView,
    responses={404: {"description": "No such profile in this workspace."}},
)
def read_consent(profile_id: str, request: Request, workspace: AdminWorkspace) -> ConsentOutView:
    """What the person has agreed to, per purpose and channel, with when and where each
    answer was given and the event that recorded it. A purpose or channel that is absent
    has never been answered."""
    return _consent_view(runtime(request), workspace, profile_id)


@router.put(
    "/v1/profiles/{profile_id}/consent",
    response_model=ConsentChanged,
    responses={
        202: {"description": "Recorded; the pipeline has not applied it yet."},
        400: {"description": "A bad purpose, channel, granted or source (the field is named)."},
        404: {"description": "No such profile in this workspace."},
    },
)
async def change_consent(
    profile_id: str,
    body: ConsentRequest,
    request: Request,
    response: Response,
    workspace: AdminWorkspace,
) -> ConsentChanged:
    """Record that the person gave or withdrew consent for one purpose on one channel (or
    `*`: all), e.g. from a preference centre or at a store's till. The change is a
    `Consent Updated` event in the log, like one sent by an SDK, so it is kept as evidence
    and a replay reproduces it. The newest answer by event time wins.

    Answers with the profile's consent once the pipeline has applied it; if the pipeline is
    behind, answers 202 with `status: pending`."""
    rt = runtime(request)
    receipt = await set_consent(
        rt,
        workspace,
        profile_id,
        body.purpose,
        body.channel,
        body.granted,
        body.source,
        requested_by=REQUESTED_BY,
    )
    applied = await rt.progress.wait_for(receipt)
    if not applied:
        response.status_code = 202
    view = await run_in_threadpool(_consent_view, rt, workspace, profile_id)
    return ConsentChanged(
        **view.model_dump(), status="applied" if applied else "pending", offset=receipt.offset
    )
