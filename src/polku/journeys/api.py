"""HTTP routes of journeys: definitions and their versions, the ready-made library, the
workspace's message settings, analytics, and the decision trace ("why did or didn't this
person get this message?").

Every route needs an admin token. A journey document is sent as JSON or YAML (the body as
it is, with `Content-Type: application/json`, `application/yaml` or `text/yaml`).
Handlers translate: request → `actions` or `queries` → response.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from polku.errors import InvalidField
from polku.http import AdminWorkspace, json_response, runtime
from polku.journeys import actions, queries, segments
from polku.journeys.config import config_body, config_of, parse_config
from polku.journeys.definition import parse_text
from polku.profiles.queries import parse_time
from polku.storage.engine import translate_errors, writing

__all__ = ["router"]

router = APIRouter(tags=["journeys"])

Key = Path(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$", description="The journey's key.")
_MAX_DOCUMENT = 256 * 1024


async def _mapping(request: Request, what: str) -> dict[str, Any]:
    """The body as a JSON (or YAML) object, whatever Content-Type the client sent."""
    body = await _document(request)
    if not isinstance(body, dict):
        raise InvalidField(
            f"{what} is a JSON object, not {type(body).__name__}.",
            field="body",
            hint="Send {...} with the keys docs/journeys.md lists.",
        )
    return body


async def _document(request: Request) -> Any:
    body = await request.body()
    if len(body) > _MAX_DOCUMENT:
        raise InvalidField(
            f"The journey document is {len(body)} bytes; the limit is {_MAX_DOCUMENT}.",
            field="body",
            hint="Split long message content into shipped templates.",
        )
    if not body.strip():
        raise InvalidField(
            "The body is empty.", field="body", hint="Send the journey as JSON or YAML."
        )
    return parse_text(body, source="The body")


@router.get("/v1/journeys")
def list_journeys(request: Request, workspace: AdminWorkspace) -> Response:
    """The workspace's journeys with their live version and whether they are enabled."""
    rt = runtime(request)
    with translate_errors("reading journeys"), rt.engine.connect() as conn:
        found = queries.list_journeys(conn, workspace)
    return json_response({"journeys": found})


@router.get("/v1/journeys/library")
def list_library(request: Request, workspace: AdminWorkspace) -> Response:
    """The ready-made journeys a workspace can install, enable and edit."""
    items = []
    for key, document in actions.library().items():
        journey = actions.check_document(document)
        items.append(
            {
                "key": key,
                "name": dict(journey.name),
                "description": journey.description,
                "trigger": journey.trigger.kind,
                "document": document,
            }
        )
    return json_response({"journeys": items})


@router.post("/v1/journeys/library/{key}")
def install(
    request: Request,
    workspace: AdminWorkspace,
    key: str = Key,
    enabled: bool = Query(False, description="Enable it at once."),
) -> Response:
    """Install a ready-made journey (idempotent: installing it again changes nothing)."""
    rt = runtime(request)
    with translate_errors("installing a journey"), writing(rt.engine) as conn:
        version, created = actions.install(conn, workspace, key, enabled=enabled)
    return json_response(
        {"key": key, "version": version, "created": created}, status=201 if created else 200
    )


@router.get("/v1/journeys/settings")
def get_settings(request: Request, workspace: AdminWorkspace) -> Response:
    """Frequency caps, quiet hours, the holdout group and the default time zone."""
    rt = runtime(request)
    with translate_errors("reading journey settings"), rt.engine.connect() as conn:
        config = config_of(conn, workspace)
    return json_response(config_body(config))


@router.put("/v1/journeys/settings")
async def put_settings(request: Request, workspace: AdminWorkspace) -> Response:
    """Replace the settings (missing keys get their defaults); 400 naming the field."""
    config = parse_config(await _mapping(request, "The journey settings"))
    rt = runtime(request)

    def save() -> None:
        with translate_errors("saving journey settings"), writing(rt.engine) as conn:
            actions.update_settings(conn, workspace, config)

    await asyncio.to_thread(save)
    return json_response(config_body(config))


@router.post("/v1/journeys/validate")
async def validate(request: Request, workspace: AdminWorkspace) -> Response:
    """Check a journey document without saving it: 200 with its summary, or 400 naming the
    step and field."""
    document = await _document(request)
    journey = await asyncio.to_thread(actions.check_document, document)
    return json_response(
        {
            "valid": True,
            "key": journey.key,
            "trigger": journey.trigger.kind,
            "steps": [s.id for s in journey.steps],
        }
    )


@router.put("/v1/journeys/{key}")
async def put_journey(
    request: Request,
    workspace: AdminWorkspace,
    key: str = Key,
    enabled: bool | None = Query(None, description="Also enable or disable it."),
) -> Response:
    """Save a journey document as its newest version (201), or change nothing when it is
    the live version already (200)."""
    document = await _document(request)
    if isinstance(document, dict) and document.get("key", key) != key:
        raise InvalidField(
            f"The document's key {document.get('key')!r} is not {key!r}.",
            field="key",
            hint="PUT the document to /v1/journeys/<its key>.",
        )
    if isinstance(document, dict):
        document.setdefault("key", key)
    rt = runtime(request)

    def save() -> tuple[int, bool]:
        with translate_errors("saving a journey"), writing(rt.engine) as conn:
            return actions.save_journey(conn, workspace, document, enabled=enabled)

    version, created = await asyncio.to_thread(save)
    return json_response(
        {"key": key, "version": version, "created": created},
        status=201 if created else 200,
    )


@router.get("/v1/journeys/{key}")
def get_journey(
    request: Request,
    workspace: AdminWorkspace,
    key: str = Key,
    version: int | None = Query(None, ge=1, le=1_000_000),
) -> Response:
    """A journey's document (the live version, or `version`) and state."""
    rt = runtime(request)
    with translate_errors("reading a journey"), rt.engine.connect() as conn:
        found = queries.get_journey(conn, workspace, key, version)
    return json_response(found)


@router.get("/v1/journeys/{key}/versions")
def list_versions(request: Request, workspace: AdminWorkspace, key: str = Key) -> Response:
    rt = runtime(request)
    with translate_errors("reading journey versions"), rt.engine.connect() as conn:
        found = queries.versions_of(conn, workspace, key)
    return json_response({"key": key, "versions": found})


@router.post("/v1/journeys/{key}/enable")
def enable(request: Request, workspace: AdminWorkspace, key: str = Key) -> Response:
    rt = runtime(request)
    with translate_errors("enabling a journey"), writing(rt.engine) as conn:
        actions.set_enabled(conn, workspace, key, True)
    return json_response({"key": key, "enabled": True})


@router.post("/v1/journeys/{key}/disable")
def disable(request: Request, workspace: AdminWorkspace, key: str = Key) -> Response:
    """Stop new entrants; people already in it go on (exit them by editing the journey)."""
    rt = runtime(request)
    with translate_errors("disabling a journey"), writing(rt.engine) as conn:
        actions.set_enabled(conn, workspace, key, False)
    return json_response({"key": key, "enabled": False})


@router.get("/v1/journeys/{key}/stats")
def stats(
    request: Request,
    workspace: AdminWorkspace,
    key: str = Key,
    since: str | None = Query(None, description="Entered from (ISO-8601 or epoch ms)."),
) -> Response:
    """Per step entered, waiting, exited and sends by status; per arm enrolled, goal
    reached, conversion and attributed revenue; uplift against holdout and control."""
    start = 0 if since is None else parse_time(since, "since")
    rt = runtime(request)
    with translate_errors("reading journey analytics"), rt.engine.connect() as conn:
        queries.get_journey(conn, workspace, key)  # 404 for an unknown journey
        found = queries.journey_stats(conn, workspace, key, since=start)
    return json_response(found)


@router.get("/v1/journeys/{key}/trace")
def trace(
    request: Request,
    workspace: AdminWorkspace,
    key: str = Key,
    profile: str = Query(min_length=1, max_length=64, description="The profile's id."),
) -> Response:
    """Why this person did or did not get this journey's messages: a verdict in one line,
    then every decision (trigger, entry, condition values, guards, channel, result)."""
    rt = runtime(request)
    with translate_errors("reading the decision trace"), rt.engine.connect() as conn:
        found = queries.explain(conn, workspace, profile, key)
    return json_response(found)


@router.get("/v1/profiles/{profile_id}/journeys")
def profile_journeys(
    request: Request,
    workspace: AdminWorkspace,
    profile_id: str = Path(min_length=1, max_length=64),
) -> Response:
    """The person's enrollments in every journey, and the messages sent to them."""
    rt = runtime(request)
    with translate_errors("reading the profile's journeys"), rt.engine.connect() as conn:
        holder = queries.resolve(conn, workspace, profile_id)
        if holder is None:
            raise queries.unknown_profile(profile_id)
        ids = sorted({profile_id, holder})
        enrolled = queries.enrollments_of(conn, workspace, profile_ids=ids)
        sent = queries.sends_of(conn, workspace, profile_ids=ids)
    return json_response(
        {
            "profile_id": holder,
            "enrollments": [
                {
                    "enrollment_id": e.enrollment_id,
                    "journey": e.journey_key,
                    "version": e.version,
                    "arm": e.arm,
                    "status": e.status,
                    "step": e.step_id,
                    "waiting": e.waiting,
                    "due_at": e.due_at,
                    "entered_at": e.entered_at,
                    "end_reason": e.end_reason,
                    "goal_at": e.goal_at,
                }
                for e in enrolled
            ],
            "sends": sent,
        }
    )


# -- segments --------------------------------------------------------------------------------


@router.get("/v1/segments", tags=["journeys"])
def list_segments(request: Request, workspace: AdminWorkspace) -> Response:
    """Saved segments with how many people are in each now."""
    rt = runtime(request)
    with translate_errors("reading segments"), rt.engine.connect() as conn:
        found = segments.list_segments(conn, workspace)
    return json_response({"segments": found})


@router.put("/v1/segments/{key}", tags=["journeys"])
async def put_segment(request: Request, workspace: AdminWorkspace, key: str = Key) -> Response:
    """Save a segment: `{"name": ..., "where": [conditions over profile, counts, cart]}`.
    Members are evaluated as each person's profile changes (and every few minutes for
    conditions that count days)."""
    body = await _mapping(request, "A segment")
    if body.get("key", key) != key:
        raise InvalidField(
            f"The body's key {body.get('key')!r} is not {key!r}.",
            field="key",
            hint="PUT the segment to /v1/segments/<its key>.",
        )
    rt = runtime(request)

    def save() -> segments.Segment:
        with translate_errors("saving a segment"), writing(rt.engine) as conn:
            return segments.save_segment(conn, workspace, {**body, "key": key})

    segment = await asyncio.to_thread(save)
    return json_response(dict(segment.document))


@router.delete("/v1/segments/{key}", tags=["journeys"])
def delete_segment(request: Request, workspace: AdminWorkspace, key: str = Key) -> Response:
    rt = runtime(request)
    with translate_errors("deleting a segment"), writing(rt.engine) as conn:
        segments.delete_segment(conn, workspace, key)
    return json_response({"key": key, "deleted": True})


@router.get("/v1/segments/{key}/members", tags=["journeys"])
def segment_members(
    request: Request,
    workspace: AdminWorkspace,
    key: str = Key,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    rt = runtime(request)
    with translate_errors("reading segment members"), rt.engine.connect() as conn:
        found = segments.members_of(conn, workspace, key, limit=limit)
    return json_response({"key": key, "members": found})
