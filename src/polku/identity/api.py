"""HTTP routes of the identity package: identifiers, the merge ledger, and un-merge.

Every route needs an admin token and sees only its workspace. Handlers translate: they call
`polku.identity.queries` and `polku.identity.actions` and shape the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from polku.events import to_iso
from polku.http import AdminWorkspace, runtime
from polku.identity.actions import request_unmerge
from polku.identity.queries import (
    KnownIdentifier,
    MergeEntry,
    merge_ledger,
    profile_identifiers,
    require_merge,
    resolve_profile,
    unknown_profile,
)
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["identity"])

REQUESTED_BY = "admin_api"
"""Who asked for an un-merge made through this API (recorded on the control event)."""


class IdentifierSeen(BaseModel):
    value: str
    first_seen: str = Field(description="Event time the identifier was first seen (ISO-8601).")
    shared: bool = Field(description="True for shared devices; never used to join people.")


class ProfileIdentifiers(BaseModel):
    profile_id: str = Field(description="The profile that holds the identifiers now.")
    requested_id: str = Field(
        description="The id asked for; differs from profile_id when that profile was merged."
    )
    identifiers: dict[str, list[IdentifierSeen]] = Field(
        description="By identifier type, strongest type first."
    )


class MergedIdentifier(BaseModel):
    type: str
    value: str


class Evidence(BaseModel):
    offset: int = Field(description="Position of the evidence event in the log.")
    message_id: str = Field(description="messageId of the event that proved the link.")


class Merge(BaseModel):
    merge_id: str
    winner_id: str = Field(description="The profile that survived the merge.")
    loser_id: str = Field(description="The profile merged into the winner.")
    evidence: Evidence
    reason: str
    identifiers: list[MergedIdentifier] = Field(
        description="The identifiers the merged profile brought (they go back on un-merge)."
    )
    merged_at: str = Field(description="Event time of the evidence (ISO-8601).")
    undone: bool
    undone_at: str | None = None


class Ledger(BaseModel):
    profile_id: str
    resolved_id: str = Field(description="The profile that holds this one now.")
    merges: list[Merge] = Field(description="Merges it won or lost, oldest first.")


class UnmergeRequest(BaseModel):
    reason: str = Field(
        default="",
        max_length=1000,
        description="Why the merge was wrong; kept on the un-merge event.",
    )


class Unmerged(BaseModel):
    status: Literal["undone", "pending"] = Field(
        description="pending: recorded, but the pipeline has not applied it yet (HTTP 202)."
    )
    merge: Merge
    winner: ProfileIdentifiers
    loser: ProfileIdentifiers


def _identifier(found: KnownIdentifier) -> IdentifierSeen:
    return IdentifierSeen(
        value=found.value, first_seen=to_iso(found.first_seen), shared=found.shared
    )


def _merge(entry: MergeEntry) -> Merge:
    return Merge(
        merge_id=entry.merge_id,
        winner_id=entry.winner_id,
        loser_id=entry.loser_id,
        evidence=Evidence(offset=entry.evidence_offset, message_id=entry.evidence_message_id),
        reason=entry.reason,
        identifiers=[MergedIdentifier(type=kind, value=value) for kind, value in entry.identifiers],
        merged_at=to_iso(entry.merged_at),
        undone=entry.undone,
        undone_at=None if entry.undone_at is None else to_iso(entry.undone_at),
    )


def _identifiers_of(rt: Runtime, workspace: str, profile_id: str) -> ProfileIdentifiers:
    with translate_errors("reading identifiers"), rt.engine.connect() as conn:
        holder = resolve_profile(conn, workspace, profile_id)
        if holder is None:
            raise unknown_profile(profile_id)
        grouped = profile_identifiers(conn, workspace, holder, rt.identity)
    return ProfileIdentifiers(
        profile_id=holder,
        requested_id=profile_id,
        identifiers={kind: [_identifier(i) for i in found] for kind, found in grouped.items()},
    )


def _ledger_of(rt: Runtime, workspace: str, profile_id: str) -> Ledger:
    with translate_errors("reading the merge ledger"), rt.engine.connect() as conn:
        holder = resolve_profile(conn, workspace, profile_id)
        if holder is None:
            raise unknown_profile(profile_id)
        entries = merge_ledger(conn, workspace, profile_id)
    return Ledger(profile_id=profile_id, resolved_id=holder, merges=[_merge(e) for e in entries])


def _merge_by_id(rt: Runtime, workspace: str, merge_id: str) -> Merge:
    with translate_errors("reading the merge ledger"), rt.engine.connect() as conn:
        entry = require_merge(conn, workspace, merge_id)
    return _merge(entry)


def _split(rt: Runtime, workspace: str, merge_id: str, applied: bool) -> Unmerged:
    merge = _merge_by_id(rt, workspace, merge_id)
    return Unmerged(
        status="undone" if applied else "pending",
        merge=merge,
        winner=_identifiers_of(rt, workspace, merge.winner_id),
        loser=_identifiers_of(rt, workspace, merge.loser_id),
    )


@router.get("/v1/profiles/{profile_id}/identifiers")
def get_profile_identifiers(
    profile_id: str, request: Request, workspace: AdminWorkspace
) -> ProfileIdentifiers:
    """The identifiers a profile holds (user id, emails, phones, loyalty cards, devices,
    anonymous ids), grouped by type with the time each was first seen. For a profile that was
    merged into another, the surviving profile's identifiers (see `profile_id`)."""
    return _identifiers_of(runtime(request), workspace, profile_id)


@router.get("/v1/profiles/{profile_id}/merges")
def get_profile_merges(profile_id: str, request: Request, workspace: AdminWorkspace) -> Ledger:
    """The merge ledger of a profile: every merge it survived or was merged by, with the
    evidence event, the identifiers involved, the reason, and whether it has been undone."""
    return _ledger_of(runtime(request), workspace, profile_id)


@router.get("/v1/identity/merges/{merge_id}")
def get_identity_merge(merge_id: str, request: Request, workspace: AdminWorkspace) -> Merge:
    """One merge of the ledger by its id."""
    return _merge_by_id(runtime(request), workspace, merge_id)


@router.post(
    "/v1/identity/merges/{merge_id}/unmerge",
    responses={
        202: {"description": "Recorded; the pipeline has not applied it yet."},
        404: {"description": "No such merge in this workspace."},
        409: {"description": "The merge was already undone."},
    },
)
async def post_unmerge(
    merge_id: str,
    request: Request,
    response: Response,
    workspace: AdminWorkspace,
    body: Annotated[UnmergeRequest | None, Body()] = None,
) -> Unmerged:
    """Undo a wrong merge: the merged profile gets back the identifiers it brought and the
    events they identify, both profiles' traits and counters are recomputed, and the two are
    never merged again. The un-merge is an event in the log, so a replay reproduces it.

    Answers once the pipeline has applied it, with both profiles' identifiers after the split;
    if the pipeline is behind, answers 202 with `status: pending`."""
    rt = runtime(request)
    reason = body.reason if body is not None else ""
    receipt = await request_unmerge(rt, workspace, merge_id, REQUESTED_BY, reason)
    applied = await rt.progress.wait_for(receipt)
    if not applied:
        response.status_code = 202
    return await run_in_threadpool(_split, rt, workspace, merge_id, applied)
