"""The trained bundles as serving holds them, and each process's background trainers.

A request never waits for training, and after the first load never for loading either:
`bundle()` answers from memory, looks at the stored version at most every `CHECK_SECONDS`
(one indexed read), and loads a newer bundle in a background thread while the old one keeps
answering. Only the very first request of a workspace in a process reads the bundle inline.
A workspace with no bundle yet gets one trained in the background (`retrainer`), and is
answered meanwhile from the live tables (bought together, viewed next) and plain counts.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, select

from polku.recommend import shelf
from polku.recommend.bundle import Bundle
from polku.recommend.tables import models
from polku.recommend.training import Retrainer

__all__ = ["CHECK_SECONDS", "bundle", "forget", "retrainer"]

CHECK_SECONDS: Final = 5.0


@dataclass
class _Slot:
    bundle: Bundle | None
    checked: float
    loading: bool = False


_lock = threading.Lock()
_slots: dict[tuple[str, str], _Slot] = {}
_trainers: dict[tuple[str, str], Retrainer] = {}


def _key(engine: Engine, workspace_id: str) -> tuple[str, str]:
    return (engine.url.render_as_string(hide_password=True), workspace_id)


def _load(engine: Engine, workspace_id: str) -> Bundle | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(models.c.version, models.c.trained_at, models.c.payload).where(
                models.c.workspace_id == workspace_id
            )
        ).first()
    if row is None:
        return None
    found = Bundle.from_bytes(
        bytes(row.payload), version=int(row.version), trained_at=row.trained_at
    )
    # A bundle's ids are ~100,000 long-lived strings and dict entries: never cyclic garbage,
    # so the collector's full passes should not walk them on every request's allocations
    # (frozen objects are still freed by reference counting when the bundle is replaced).
    gc.freeze()
    return found


def _load_in_background(engine: Engine, workspace_id: str, slot: _Slot) -> None:
    def run() -> None:
        try:
            found = _load(engine, workspace_id)
            if found is not None:
                slot.bundle = found
        finally:
            slot.loading = False

    slot.loading = True
    threading.Thread(target=run, name="polku-recommend-load", daemon=True).start()


def bundle(conn: Connection, workspace_id: str) -> Bundle | None:
    """The workspace's newest bundle this process has loaded (None: none trained yet)."""
    engine = conn.engine
    key = _key(engine, workspace_id)
    now = time.monotonic()
    with _lock:
        slot = _slots.get(key)
        if slot is None:
            slot = _slots[key] = _Slot(None, 0.0)
    if slot.bundle is not None and now - slot.checked < CHECK_SECONDS:
        return slot.bundle
    slot.checked = now
    stored = conn.execute(
        select(models.c.version).where(models.c.workspace_id == workspace_id)
    ).scalar()
    if stored is None:
        retrainer(engine, workspace_id).request_if_idle()
        return slot.bundle
    if slot.bundle is None:
        slot.bundle = _load(engine, workspace_id)
    elif int(stored) != slot.bundle.version and not slot.loading:
        _load_in_background(engine, workspace_id, slot)
    return slot.bundle


def retrainer(engine: Engine, workspace_id: str) -> Retrainer:
    """This process's background trainer of the workspace (made on first use)."""
    key = _key(engine, workspace_id)
    with _lock:
        found = _trainers.get(key)
        if found is None or found.engine is not engine:
            found = _trainers[key] = Retrainer(engine, workspace_id)
        return found


def forget(engine: Engine) -> None:
    """Drop what this process holds for `engine` (a closed runtime, a test's database)."""
    url = engine.url.render_as_string(hide_password=True)
    shelf.forget(url)
    with _lock:
        for key in [k for k in _slots if k[0] == url]:
            del _slots[key]
        for key in [k for k in _trainers if k[0] == url]:
            _trainers.pop(key).stop()
