"""Journeys in the console: the list with status and figures, a journey's flow and numbers
per step, the editor (validate, save as a new version, preview the flow), enable and
disable, "why did this customer (not) get a message", and a test send to oneself.

Every write goes through `polku.journeys.actions` (as the API's handlers do); every number
comes from `polku.journeys.queries`; a test send through `polku.journeys.proofs`, which
writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polku.channels.registry import Channels
from polku.console.i18n import explain, explain_hint, text
from polku.console.journey_diagram import WORDS, diagram
from polku.console.web import Form, Viewer, locale_of, posted, redirect, refused, render, signed_in
from polku.errors import BadRequest, Conflict, InvalidJourney, NotFound, PolkuError
from polku.http import runtime
from polku.journeys import actions, proofs, queries
from polku.journeys.definition import Journey, Send, parse_text
from polku.storage.engine import translate_errors, writing

__all__ = ["router"]

router = APIRouter()

_KEY: Final = r"^[a-z0-9][a-z0-9-]{0,79}$"
_STEP: Final = r"^[A-Za-z0-9][A-Za-z0-9_.?-]{0,79}$"
_STEP_FIELD: Final = re.compile(r"^steps\[(\d+):([^\]]+)\](?:\.([A-Za-z_]+))?")
_AT_LINE: Final = re.compile(r"at line (\d+)")
_CONTEXT_LINES: Final = 3
_TOP_KEYS: Final = ("key", "name", "description", "trigger", "entry", "exit", "goal", "steps")
_STEP_KEYS: Final = (
    "id",
    "wait",
    "wait_until",
    "wait_for",
    "if",
    "then",
    "else",
    "split",
    "send",
    "template",
)
STARTER: Final = """\
key: welcome
name: {en: Welcome, fi: Tervetuloa}
description: Greet a new customer a day after they sign up.
trigger:
  event: Signed Up
steps:
  - id: wait-a-day
    wait: 1d
  - id: welcome-email
    send: email
    template:
      en: {subject: Welcome to our shop, text: Good to have you with us.}
      fi: {subject: Tervetuloa kauppaamme, text: Mukava että olet mukana.}
"""


# -- helpers of the pages ------------------------------------------------------------------


def _words(locale: str) -> dict[str, str]:
    return {word: text(locale, "diagram_" + word) for word in WORDS}


def _picture(journey: Journey, locale: str, marked: str | None = None) -> Any:
    title = text(locale, "diagram_title", journey=journey.name_in(locale))
    return diagram(journey, title=title, words=_words(locale), marked=marked)


class _Indented(yaml.SafeDumper):
    """Lists indented under their key, as docs/journeys.md writes them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _ordered(mapping: Mapping[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    found = {k: mapping[k] for k in first if k in mapping}
    found.update({k: v for k, v in mapping.items() if k not in found})
    return found


def _as_yaml(document: Mapping[str, Any]) -> str:
    """A stored document (its keys sorted) as YAML for the editor, in the order people write
    it: the journey's keys as docs/journeys.md lists them, each step's id and kind first."""
    ordered = _ordered(document, _TOP_KEYS)
    steps = ordered.get("steps")
    if isinstance(steps, list):
        ordered["steps"] = [
            _ordered(step, _STEP_KEYS) if isinstance(step, Mapping) else step for step in steps
        ]
    return yaml.dump(ordered, Dumper=_Indented, sort_keys=False, allow_unicode=True, width=10_000)


def _line_of(source: str, field: str | None, message: str) -> int | None:
    """The line (1-based) of `source` that the problem at `field` is on, when it can be
    found: the YAML parser's own line, else the step's `id:` line, else its field's."""
    found = _AT_LINE.search(message)
    if found:
        return int(found.group(1))
    if not field:
        return None
    lines = source.splitlines()
    step = _STEP_FIELD.match(field)
    if step is None:
        top = field.split(".")[0].split("[")[0]
        for i, line in enumerate(lines):
            if re.match(rf'^"?{re.escape(top)}"?\s*:', line):
                return i + 1
        return None
    step_id, part = step.group(2), step.group(3)
    id_line = re.compile(rf'"?id"?\s*:\s*["\']?{re.escape(step_id)}["\']?\s*[,}}]?\s*$')
    start = next((i for i, line in enumerate(lines) if id_line.search(line)), None)
    if start is None:
        return None
    if part:
        for i in range(start, len(lines)):
            if i > start and re.search(r'"?id"?\s*:', lines[i]):
                break
            if re.search(rf'(^|[\s{{,-])"?{re.escape(part)}"?\s*:', lines[i]):
                return i + 1
    return start + 1


def _excerpt(source: str, line: int | None) -> list[tuple[int, str, bool]]:
    """The lines around `line`: (number, text, is it the line)."""
    if line is None:
        return []
    lines = source.splitlines()
    first, last = max(1, line - _CONTEXT_LINES), min(len(lines), line + _CONTEXT_LINES)
    return [(n, lines[n - 1], n == line) for n in range(first, last + 1)]


def _step_rows(
    journey: Journey,
    stats: Mapping[str, Any],
    reasons: Mapping[str, Mapping[str, int]],
    arms: Mapping[str, Mapping[str, int]],
) -> list[dict[str, Any]]:
    """The journey's steps in their written order with their numbers."""
    by_step = {row["step"]: row for row in stats["steps"]}
    rows = []
    for step in journey.steps:
        found = by_step.get(step.id, {})
        sends = found.get("sends", {})
        rows.append(
            {
                "id": step.id,
                "step": step,
                "entered": found.get("entered", 0),
                "waiting": found.get("waiting", 0),
                "exited": found.get("exited", 0),
                "sent": sends.get("sent", 0),
                "dropped": sends.get("dropped", 0) + sends.get("failed", 0),
                "reasons": sorted(reasons.get(step.id, {}).items(), key=lambda kv: -kv[1]),
                "arms": sorted(arms.get(step.id, {}).items()),
                "email": isinstance(step, Send) and step.kind == "email",
            }
        )
    return rows


def _figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The key figures of a journey's numbers: enrolled, active, sent, goals, revenue."""
    arms = stats["arms"]
    return {
        "enrolled": stats["enrolled"],
        "active": stats["status"].get("active", 0),
        "sent": sum(row["sends"].get("sent", 0) for row in stats["steps"]),
        "goals": sum(arm["goal_reached"] for arm in arms.values()),
        "revenue": sum(arm["revenue_minor"] for arm in arms.values()),
        "uplift": stats["uplift_points"],
    }


def _error_of(locale: str, exc: PolkuError) -> dict[str, Any]:
    """The error as the editor shows it, in `locale`; `source` is the English message, which
    names the line of a YAML error."""
    return {
        "message": explain(locale, exc),
        "field": exc.field,
        "hint": explain_hint(locale, exc),
        "source": exc.message,
    }


# -- the list ------------------------------------------------------------------------------


@router.get("/journeys")
def journeys_page(request: Request) -> Response:
    """The workspace's journeys: status, version, trigger and key figures, with enable and
    disable buttons."""
    found = signed_in(request, "journeys")
    ws = found.user.workspace_id
    rt = runtime(request)
    try:
        with translate_errors("reading journeys"), rt.engine.connect() as conn:
            journeys = queries.list_journeys(conn, ws)
            figures = {
                j["key"]: _figures(queries.journey_stats(conn, ws, j["key"])) for j in journeys
            }
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale_of(request, found), exc))
    return render(request, "journeys/list.html", found, journeys=journeys, figures=figures)


def _switch(request: Request, key: str, form: dict[str, str], enabled: bool) -> Response:
    found = posted(request, form, "journeys.edit")
    rt = runtime(request)
    try:
        with translate_errors("switching a journey"), writing(rt.engine) as conn:
            actions.set_enabled(conn, found.user.workspace_id, key, enabled)
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale_of(request, found), exc))
    back = form.get("back", "")
    return redirect(back if back == f"/console/journeys/{key}" else "/console/journeys")


@router.post("/journeys/{key}/enable")
def enable_journey(request: Request, key: str, form: Form) -> Response:
    """Let new people enter the journey."""
    return _switch(request, key, form, True)


@router.post("/journeys/{key}/disable")
def disable_journey(request: Request, key: str, form: Form) -> Response:
    """Stop new entrants; people already in the journey go on."""
    return _switch(request, key, form, False)


# -- the editor ----------------------------------------------------------------------------


def _editor(
    request: Request,
    viewer: Viewer,
    *,
    key: str | None,
    source: str,
    status: int = 200,
    error: dict[str, Any] | None = None,
    preview: Journey | None = None,
    live: Journey | None = None,
) -> Response:
    """The editor page; `preview` is the valid draft's flow, `live` the live version's, drawn
    beside an error with the step it names outlined."""
    locale = locale_of(request, viewer)
    line = _line_of(source, error["field"], error["source"]) if error else None
    marked = None
    if error and error["field"]:
        step = _STEP_FIELD.match(error["field"])
        marked = step.group(2) if step else None
    return render(
        request,
        "journeys/edit.html",
        viewer,
        status,
        key=key,
        source=source,
        error=error,
        line=line,
        excerpt=_excerpt(source, line),
        marked=marked,
        picture=_picture(preview, locale) if preview else None,
        steps=[s.id for s in preview.steps] if preview else [],
        live_picture=_picture(live, locale, marked) if live else None,
    )


def _live(request: Request, viewer: Viewer, key: str) -> Journey | None:
    """The live version of journey `key`, if it can be read."""
    rt = runtime(request)
    ws = viewer.user.workspace_id
    try:
        with translate_errors("reading a journey"), rt.engine.connect() as conn:
            state = queries.get_journey(conn, ws, key)
            return queries.version_of(conn, ws, key, int(state["live_version"]))
    except PolkuError:
        return None


@router.get("/journeys/new")
def new_journey(request: Request) -> Response:
    """The editor with a starting document for a new journey."""
    found = signed_in(request, "journeys.edit")
    return _editor(request, found, key=None, source=STARTER)


@router.get("/journeys/{key}/edit")
def edit_journey(request: Request, key: str) -> Response:
    """The editor with the live version's document as YAML."""
    found = signed_in(request, "journeys.edit")
    rt = runtime(request)
    try:
        with translate_errors("reading a journey"), rt.engine.connect() as conn:
            state = queries.get_journey(conn, found.user.workspace_id, key)
            journey = queries.version_of(
                conn, found.user.workspace_id, key, int(state["live_version"])
            )
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale_of(request, found), exc))
    source = _as_yaml(state["document"])
    return _editor(request, found, key=key, source=source, preview=journey)


def _checked(source: str, key: str | None) -> tuple[dict[str, Any], Journey]:
    """The editor's text as a journey document, checked in full (raises `BadRequest`)."""
    document = parse_text(source, source="The document")
    if not isinstance(document, dict):
        raise InvalidJourney(
            "The document is not a journey: it must be a mapping with key, trigger and steps.",
            field="document",
            hint="Start from the example of docs/journeys.md.",
            message_id="journey_not_mapping",
        )
    if key is not None:
        if document.get("key", key) != key:
            raise InvalidJourney(
                f"The document's key {str(document.get('key'))[:80]!r} is not {key!r}.",
                field="key",
                hint="Keep the key; to copy the journey, make a new one.",
                message_id="journey_key_changed",
                params={"given": str(document.get("key"))[:80], "journey": key},
            )
        document.setdefault("key", key)
    return document, actions.check_document(document)


def _editor_post(request: Request, form: dict[str, str], key: str | None) -> Response:
    found = posted(request, form, "journeys.edit")
    source = form.get("document", "").replace("\r\n", "\n")
    try:
        document, journey = _checked(source, key)
    except BadRequest as exc:
        live = _live(request, found, key) if key else None
        error = _error_of(locale_of(request, found), exc)
        return _editor(request, found, key=key, source=source, status=400, error=error, live=live)
    if form.get("action") != "save":
        return _editor(request, found, key=key, source=source, preview=journey)
    rt = runtime(request)
    ws = found.user.workspace_id
    try:
        with translate_errors("saving a journey"), writing(rt.engine) as conn:
            if key is None:
                version = actions.create_journey(conn, ws, document, by=found.user.email)
            else:
                version, _ = actions.save_journey(conn, ws, document, by=found.user.email)
    except (BadRequest, Conflict) as exc:
        return _editor(
            request,
            found,
            key=key,
            source=source,
            status=exc.status,
            error=_error_of(locale_of(request, found), exc),
        )
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale_of(request, found), exc))
    return redirect(f"/console/journeys/{journey.key}?saved={version}")


@router.post("/journeys/new")
def create_journey(request: Request, form: Form) -> Response:
    """Validate the new journey's document, or save it as version 1 (disabled)."""
    return _editor_post(request, form, None)


@router.post("/journeys/{key}/edit")
def update_journey(request: Request, key: str, form: Form) -> Response:
    """Validate the document (errors name the step and field, nothing is saved), or save it
    as the journey's next version."""
    return _editor_post(request, form, key)


# -- one journey ---------------------------------------------------------------------------


def _detail(
    request: Request,
    viewer: Viewer,
    key: str,
    *,
    who: str = "",
    saved: int | None = None,
    proof: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    ws = viewer.user.workspace_id
    rt = runtime(request)
    locale = locale_of(request, viewer)
    explained: dict[str, Any] | None = None
    explain_error: str | None = None
    try:
        with translate_errors("reading a journey"), rt.engine.connect() as conn:
            state = queries.get_journey(conn, ws, key)
            journey = queries.version_of(conn, ws, key, int(state["live_version"]))
            versions = queries.versions_of(conn, ws, key)
            stats = queries.journey_stats(conn, ws, key)
            reasons = queries.drop_reasons(conn, ws, key)
            by_arm = queries.entered_by_arm(conn, ws, key)
            if who.strip():
                try:
                    person = proofs.find_person(conn, ws, who, rt.identity)
                    explained = queries.explain(conn, ws, person, key)
                except (NotFound, BadRequest) as exc:
                    explain_error, status = explain(locale, exc), max(status, exc.status)
    except PolkuError as exc:
        return refused(request, viewer, exc.status, explain(locale, exc))
    assert journey is not None  # a journey's live version is stored
    rows = _step_rows(journey, stats, reasons, by_arm)
    return render(
        request,
        "journeys/detail.html",
        viewer,
        status,
        key=key,
        journey=journey,
        state=state,
        versions=versions,
        figures=_figures(stats),
        arms=stats["arms"],
        rows=rows,
        picture=_picture(journey, locale),
        funnel_steps=[(row["id"], float(row["entered"])) for row in rows],
        who=who,
        explained=explained,
        explain_error=explain_error,
        saved=saved,
        proof=proof,
    )


@router.get("/journeys/{key}")
def journey_page(
    request: Request,
    key: str,
    who: str = Query("", description="A profile id or email address."),
    saved: str = Query("", description="The version just saved, to say so."),
) -> Response:
    """A journey: its flow, numbers per step and arm, versions, and with `who` (a profile
    id or email) why that person did or did not get its messages."""
    found = signed_in(request, "journeys")
    version = int(saved) if saved.isdigit() and len(saved) < 8 else None
    return _detail(request, found, key, who=who[:200], saved=version)


@router.post("/journeys/{key}/steps/{step_id}/proof")
def proof(request: Request, key: str, step_id: str, form: Form) -> Response:
    """Send the email step's message, rendered for a sample or the chosen profile, to the
    signed-in user's own address; nobody is enrolled and nothing is counted."""
    found = posted(request, form, "journeys.edit")
    locale = locale_of(request, found)
    if not re.fullmatch(_KEY, key) or not re.fullmatch(_STEP, step_id):
        return refused(request, found, 404, text(locale, "no_such_step", step=step_id[:80]))
    rt = runtime(request)
    ws, who = found.user.workspace_id, form.get("profile", "").strip()[:200]
    channels = Channels.from_settings(rt.settings)
    try:
        with translate_errors("rendering a test send"), rt.engine.connect() as conn:
            person = proofs.find_person(conn, ws, who, rt.identity) if who else None
            done = proofs.send_proof(
                conn,
                ws,
                key,
                step_id,
                to=found.user.email,
                channels=channels,
                identity=rt.identity,
                profile_id=person,
                subject_prefix=text(locale, "proof_subject_prefix"),
            )
    except PolkuError as exc:
        note = {"ok": False, "step": step_id, "message": explain(locale, exc)}
        return _detail(request, found, key, proof=note, status=exc.status)
    finally:
        channels.close()
    if done.result.ok:
        note = {"ok": True, "step": step_id, "message": text(locale, "proof_sent", to=done.to)}
        return _detail(request, found, key, proof=note)
    error = done.result.error
    message = (
        text(locale, "proof_no_smtp")
        if error.startswith("channel_not_configured")
        else text(locale, "proof_failed", error=error)
    )
    note = {"ok": False, "step": step_id, "message": message}
    return _detail(request, found, key, proof=note, status=409)
