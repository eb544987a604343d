"""The dead-letter store: record every rejection with its reason, and read them back.

"Where did my event go?" always has an answer: an event is either in the log or here.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from polku.collect.tables import dead_letters
from polku.events import LoggedEvent
from polku.privacy.cards import mask_card_numbers

__all__ = ["Rejection", "list_rejections", "record_pipeline_failure", "record_rejections"]

_MAX_PAYLOAD = 64 * 1024
_MAX_MESSAGE_ID = 200  # widths of dead_letters.message_id and .field
_MAX_FIELD = 200


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str
    field: str | None = None
    index: int | None = None  # position in the batch, None for a single-event request
    message_id: str | None = None
    payload: Any = None  # the rejected JSON value (or raw bytes when it did not parse)
    hint: str | None = None  # what to do about it, when the error says

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.index is not None:
            body["index"] = self.index
        if self.message_id is not None:
            body["messageId"] = self.message_id
        if self.hint is not None:
            body["hint"] = self.hint
        return body


def _payload_bytes(payload: Any) -> bytes | None:
    if payload is None:
        return None
    if isinstance(payload, bytes):
        data = payload
    else:
        try:
            data = orjson.dumps(payload)
        except TypeError:  # nested deeper than orjson writes: keep a readable prefix
            try:
                data = repr(payload)[:_MAX_PAYLOAD].encode("utf-8", "replace")
            except RecursionError:
                data = b"(nested too deeply to show)"
    # A request refused before its messages were checked (an unknown write key, a broken
    # batch) is kept raw: mask card numbers here too, so none is ever stored.
    return mask_card_numbers(data[:_MAX_PAYLOAD])


def _text(value: str | None, limit: int | None = None) -> str | None:
    """A client-supplied string made storable: no NUL (PostgreSQL refuses it), within `limit`."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "\\0")
    return value if limit is None else value[:limit]


def record_rejections(
    conn: Connection,
    rejections: Sequence[Rejection],
    *,
    endpoint: str,
    workspace_id: str | None,
    source_id: str | None,
    received_at: int | None = None,
) -> None:
    if not rejections:
        return
    at = received_at if received_at is not None else int(time.time() * 1000)
    conn.execute(
        insert(dead_letters),
        [
            {
                "workspace_id": workspace_id,
                "source_id": source_id,
                "received_at": at,
                "endpoint": endpoint,
                "batch_index": r.index,
                "message_id": _text(r.message_id, _MAX_MESSAGE_ID),
                "code": r.code[:64],
                "field": _text(r.field, _MAX_FIELD),
                "message": _text(r.message),
                "hint": r.hint,
                "payload": _payload_bytes(r.payload),
            }
            for r in rejections
        ],
    )


def record_pipeline_failure(
    conn: Connection, consumer: str, event: LoggedEvent, exc: BaseException
) -> None:
    """An accepted event that a consumer could not process: kept in the log, reported here."""
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    record_rejections(
        conn,
        [
            Rejection(
                code="pipeline_failed",
                message=f"The {consumer} consumer could not process this event: {detail}. "
                "The event is kept in the log; fix the cause and run `polku replay`.",
                message_id=event.message_id,
                payload=event.payload,
            )
        ],
        endpoint=f"pipeline:{consumer}",
        workspace_id=event.workspace_id,
        source_id=event.source_id,
        received_at=event.received_at,
    )


def list_rejections(
    conn: Connection,
    workspace_id: str,
    *,
    limit: int = 100,
    before_id: int | None = None,
    code: str | None = None,
    include_unknown_keys: bool = True,
) -> list[dict[str, Any]]:
    """Newest first. Requests with unknown write keys belong to no workspace: every admin sees
    that they happened (to spot a mistyped key) but not their payload, which may be another
    tenant's data."""
    query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if include_unknown_keys:
        query = query.where(
            (dead_letters.c.workspace_id == workspace_id) | dead_letters.c.workspace_id.is_(None)
        )
    else:
        query = query.where(dead_letters.c.workspace_id == workspace_id)
    if before_id is not None:
        query = query.where(dead_letters.c.id < before_id)
    if code is not None:
        query = query.where(dead_letters.c.code == code)
    out = []
    for row in conn.execute(query):
        item = dict(row._mapping)
        raw = item.pop("payload")
        if item["workspace_id"] is None:
            raw = None
        try:
            item["payload"] = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            item["payload"] = bytes(raw).decode("utf-8", "replace")
        out.append(item)
    return out
