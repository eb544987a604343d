"""Journeys in the console: the list with status and version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polku.console.web import render, signed_in
from polku.http import runtime
from polku.journeys.queries import list_journeys
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter()


@router.get("/journeys")
def journeys_page(request: Request) -> Response:
    """The workspace's journeys with status and version (read-only for now)."""
    found = signed_in(request, "journeys")
    if isinstance(found, Response):
        return found
    rt = runtime(request)
    with translate_errors("reading journeys"), rt.engine.connect() as conn:
        journeys = list_journeys(conn, found.user.workspace_id)
    return render(request, "journeys/list.html", found, journeys=journeys)
