"""Writes to the identity graph that people ask for (the API, the console, the CLI).

The graph itself is a projection of the log, so an action never updates its tables: it
appends a control event that the identity consumer applies, which is what makes
`polku replay` reproduce it.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

import orjson

from polku.errors import Conflict
from polku.events import NewEvent, Receipt, to_iso
from polku.identity.projection import UNMERGE
from polku.identity.queries import require_merge
from polku.storage.engine import translate_errors

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = ["request_unmerge"]


async def request_unmerge(
    runtime: Runtime, workspace: str, merge_id: str, requested_by: str, reason: str
) -> Receipt:
    """Ask for merge `merge_id` to be undone; return where the request went in the log.

    Appends a ``polku.unmerge`` event; the identity consumer gives the merged profile back its
    identifiers and events, and keeps the two profiles apart from then on. Wait for the
    pipeline to process it (`Runtime.progress.wait_for`) to read the result.

    Raises `NotFound` if the workspace has no such merge and `Conflict` if it was undone.
    """
    with translate_errors("reading the merge ledger"), runtime.engine.connect() as conn:
        entry = require_merge(conn, workspace, merge_id)
    if entry.undone:
        raise Conflict(
            f"Merge {merge_id!r} was already undone at {to_iso(entry.undone_at or 0)}.",
            field="merge_id",
            hint="Nothing to do: the two profiles are apart and will not be merged again.",
            message_id="merge_already_undone",
            params={"merge": merge_id, "undone_at": entry.undone_at or 0},
        )
    now = int(time.time() * 1000)
    message_id = f"polku-unmerge-{uuid.uuid4().hex}"
    payload = {
        "type": UNMERGE,
        "messageId": message_id,
        "properties": {"merge_id": merge_id, "requested_by": requested_by, "reason": reason},
        "timestamp": to_iso(now),
        "receivedAt": to_iso(now),
    }
    event = NewEvent(
        workspace_id=workspace,
        message_id=message_id,
        type=UNMERGE,
        partition_key=entry.loser_id,
        received_at=now,
        timestamp=now,
        payload=orjson.dumps(payload),
    )
    return Receipt(await runtime.log.append([event]), event.partition_key)
