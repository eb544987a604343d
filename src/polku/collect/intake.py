"""Accept one collection request: decode the body, find the source, validate every message,
append the good ones to the log and record the bad ones as dead letters.

HTTP-free: the router hands in bytes and headers and gets an `IntakeResult` back, so the
same code serves every endpoint (and could serve another transport).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine

from polku.access.queries import KeyCache, Source
from polku.collect.deadletters import Rejection, record_rejections
from polku.collect.live import LiveFeed
from polku.collect.validate import EventRejected, prepare
from polku.errors import (
    BadRequest,
    InvalidJSON,
    PayloadTooLarge,
    PolkuError,
    Unauthorized,
    Unavailable,
)
from polku.events import NewEvent, to_iso
from polku.identity.identifiers import IdentityConfig
from polku.log.base import EventLog
from polku.ops.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED, LOG_APPEND_SECONDS
from polku.settings import Settings
from polku.storage.engine import translate_errors, writing

__all__ = ["Intake", "IntakeResult"]

logger = logging.getLogger(__name__)

_MAX_WRITE_KEY = 128  # width of write_keys.write_key: anything longer is no key of ours


@dataclass(slots=True)
class IntakeResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    head: int = 0


class Intake:
    """The collection pipeline for one process; `identity` decides which ids are junk."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        log: EventLog,
        keys: KeyCache,
        identity: IdentityConfig | None = None,
        live: LiveFeed | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._log = log
        self._keys = keys
        self._identity = identity if identity is not None else IdentityConfig()
        self._live = live

    def source(self, write_key: str | None) -> Source | None:
        """The source behind `write_key`, or None when it is unknown, revoked or malformed."""
        if not write_key or len(write_key) > _MAX_WRITE_KEY or "\x00" in write_key:
            return None
        return self._keys.source(write_key)

    async def refuse(
        self,
        endpoint: str,
        error: PolkuError,
        *,
        basic_user: str | None,
        payload: bytes | None = None,
    ) -> None:
        """Record a request refused before it reached `receive` (e.g. a body over the limit)."""
        await self._dead_letter(
            [Rejection(error.code, error.message, error.field, payload=payload, hint=error.hint)],
            endpoint,
            self.source(basic_user),
            int(time.time() * 1000),
        )

    async def receive(
        self,
        endpoint: str,
        body: bytes,
        *,
        content_encoding: str | None,
        basic_user: str | None,
        implied_type: str | None,
    ) -> IntakeResult:
        """Handle one request to `endpoint` (``batch`` or a message type)."""
        received_at = int(time.time() * 1000)
        is_batch = implied_type is None
        limit = self._settings.max_batch_bytes if is_batch else self._settings.max_event_bytes
        source = self.source(basic_user)

        try:
            data = self._decode(body, content_encoding, limit, is_batch)
        except BadRequest as exc:
            await self._dead_letter(
                [Rejection(exc.code, exc.message, exc.field, payload=body[:65536], hint=exc.hint)],
                endpoint,
                source,
                received_at,
            )
            raise

        if source is None:
            key = data.get("writeKey")
            if not isinstance(key, str):
                key = None
            source = self.source(key)
            if source is None:
                given = basic_user or key
                message = (
                    f"Unknown or revoked write key {given[:12]!r}…."
                    if given
                    else "No write key: send it as the HTTP Basic username or as `writeKey`."
                )
                await self._dead_letter(
                    [
                        Rejection(
                            "unknown_write_key" if given else "missing_write_key",
                            message,
                            "writeKey",
                            payload=data,
                        )
                    ],
                    endpoint,
                    None,
                    received_at,
                )
                raise Unauthorized(
                    message,
                    field="writeKey",
                    code="unknown_write_key" if given else "missing_write_key",
                    hint="Create a key with `polku keys create` and send it as the Basic "
                    "auth username, as the Segment SDKs do.",
                )

        if is_batch:
            try:
                messages = self._batch_items(data)
            except BadRequest as exc:
                await self._dead_letter(
                    [Rejection(exc.code, exc.message, exc.field, payload=data, hint=exc.hint)],
                    endpoint,
                    source,
                    received_at,
                )
                raise
            batch_sent_at = data.get("sentAt")
            batch_context = data.get("context")
            if not isinstance(batch_context, dict):
                batch_context = None
        else:
            messages, batch_sent_at, batch_context = [data], None, None

        accepted: list[NewEvent] = []
        rejected: list[Rejection] = []
        for index, raw in enumerate(messages):
            try:
                accepted.append(
                    prepare(
                        raw,
                        implied_type=implied_type,
                        received_at=received_at,
                        batch_sent_at=batch_sent_at,
                        workspace_id=source.workspace_id,
                        source_id=source.source_id,
                        max_event_bytes=self._settings.max_event_bytes,
                        identity=self._identity,
                        index=index if is_batch else None,
                        batch_context=batch_context,
                    )
                )
            except EventRejected as exc:
                rejected.append(exc.rejection)

        result = IntakeResult(accepted=len(accepted), rejected=rejected)
        if accepted:
            started = time.perf_counter()
            result.head = await self._log.append(accepted)
            LOG_APPEND_SECONDS.observe(time.perf_counter() - started)
            EVENTS_ACCEPTED.labels(source.workspace_id).inc(len(accepted))
        if rejected:
            await self._dead_letter(rejected, endpoint, source, received_at)
        return result

    def _decode(self, body: bytes, encoding: str | None, limit: int, is_batch: bool) -> Any:
        if encoding and encoding.strip().lower() == "gzip":
            try:
                inflater = zlib.decompressobj(wbits=31)
                body = inflater.decompress(body, self._settings.max_body_bytes)
                if inflater.unconsumed_tail:
                    raise PayloadTooLarge(
                        f"The request decompresses to more than {self._settings.max_body_bytes} "
                        "bytes.",
                        hint="Send smaller batches.",
                    )
                if not inflater.eof:
                    raise zlib.error("the compressed data ends early (truncated)")
            except zlib.error as exc:
                raise BadRequest(
                    f"The body is not valid gzip: {exc}.",
                    code="invalid_gzip",
                    hint="Drop the Content-Encoding header or compress the body with gzip.",
                ) from exc
        elif encoding and encoding.strip().lower() not in ("identity", ""):
            raise BadRequest(
                f"Content-Encoding {encoding!r} is not supported.",
                code="unsupported_encoding",
                hint="Send the body as plain JSON or gzip it.",
            )
        if len(body) > limit:
            what = "batch" if is_batch else "event"
            raise PayloadTooLarge(
                f"The {what} is {len(body)} bytes; the limit is {limit} bytes.",
                code="batch_too_large" if is_batch else "event_too_large",
                field="body",
                hint="Send at most 500 KB per batch and 32 KB per event, as Segment allows.",
            )
        if not body.strip():
            raise InvalidJSON("The request body is empty.", hint="Send a JSON object.")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(
                f"The body is not valid JSON: {exc}.",
                hint="Check the JSON with a validator; strings need double quotes.",
            ) from exc
        if not isinstance(data, dict):
            raise BadRequest(
                f"The body must be a JSON object (got {type(data).__name__}).",
                code="invalid_body",
                hint='Send {"type": ..., "userId": ...} or {"batch": [...]}.',
            )
        return data

    @staticmethod
    def _batch_items(data: dict[str, Any]) -> list[Any]:
        items = data.get("batch")
        if not isinstance(items, list):
            raise BadRequest(
                "A batch request needs `batch`: a JSON array of messages.",
                field="batch",
                code="invalid_batch",
                hint='Send {"batch": [{"type": "track", ...}, ...]}.',
            )
        if not items:
            raise BadRequest(
                "The batch is empty.",
                field="batch",
                code="empty_batch",
                hint="Send at least one message.",
            )
        return items

    async def _dead_letter(
        self,
        rejections: list[Rejection],
        endpoint: str,
        source: Source | None,
        received_at: int,
    ) -> None:
        # Every rejection passes here; count them (once per code) before they are stored.
        for code, count in Counter(r.code for r in rejections).items():
            EVENTS_REJECTED.labels(code).inc(count)

        def record() -> None:
            with translate_errors("recording rejected events"), writing(self._engine) as conn:
                record_rejections(
                    conn,
                    rejections,
                    endpoint=endpoint,
                    workspace_id=source.workspace_id if source else None,
                    source_id=source.source_id if source else None,
                    received_at=received_at,
                )

        try:
            await asyncio.to_thread(record)
            if self._live is not None:
                at = to_iso(received_at)
                self._live.rejected(
                    source.workspace_id if source else None,
                    [{**r.as_dict(), "endpoint": endpoint, "receivedAt": at} for r in rejections],
                )
        except Unavailable as exc:
            # The client still gets every rejection in the response; only the debugger's copy
            # is missing. Failing the request for it would make the SDK resend good events.
            logger.warning(
                "could not record %d rejected event(s) as dead letters: %s",
                len(rejections),
                exc,
                extra={"workspace_id": source.workspace_id if source else None},
            )
