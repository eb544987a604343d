"""Training: read a workspace's interactions and catalogue, fit every model, store the bundle.

`train(engine, workspace)` reads outside any write transaction, fits the models (seconds
for a million interactions), and then replaces the bundle in one short write, so serving
keeps answering from the previous bundle the whole time and switches when it sees the new
version. `Retrainer` runs it in a background thread on a schedule and on demand, one run at
a time per workspace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import orjson
from sqlalchemy import Engine, select

from polku.commerce.catalog.tables import products
from polku.identity.tables import event_profiles
from polku.journeys.tables import segment_members
from polku.recommend.actions import save_bundle
from polku.recommend.bundle import Bundle
from polku.recommend.models import Content, Factors, Interactions, ItemItem, Popularity
from polku.recommend.tables import interactions
from polku.storage.engine import translate_errors, writing

__all__ = ["STEPS", "Retrainer", "TrainingReport", "read_interactions", "train"]

STEPS: Final = ("reading", "popularity", "co-occurrence", "factors (ALS)", "content", "saving")
"""The steps of a training run, in order, as the progress callback names them."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingReport:
    workspace_id: str
    version: int
    interactions: int
    people: int
    items: int
    seconds: dict[str, float]


def read_interactions(engine: Engine, workspace_id: str) -> tuple[Interactions, list[str]]:
    """Every interaction of the workspace with its profile, and each item's catalogue text
    (items: the catalogue's products, then products seen only in events)."""
    ri, ep = interactions.c, event_profiles.c
    with translate_errors("reading interactions"), engine.connect() as conn:
        rows = conn.execute(
            select(ep.profile_id, ri.product_id, ri.weight, ri.at, ri.store_id)
            .select_from(interactions.join(event_profiles, ep.offset == ri.offset))
            .where(ri.workspace_id == workspace_id)
            .order_by(ri.offset, ri.line)
        ).all()
        catalogue = conn.execute(
            select(
                products.c.product_id,
                products.c.name,
                products.c.description,
                products.c.category_key,
                products.c.brand,
                products.c.translations,
            )
            .where(products.c.workspace_id == workspace_id)
            .order_by(products.c.product_id)
        ).all()
    items: dict[str, int] = {}
    texts: list[str] = []
    for pid, name, description, category, brand, translations in catalogue:
        items[pid] = len(items)
        words = [name, description or "", category or "", brand or ""]
        for tr in orjson.loads(translations or "{}").values():
            if isinstance(tr, dict):
                words.extend(str(v) for v in tr.values())
        texts.append(" ".join(words))
    users: dict[str, int] = {}
    stores: dict[str, int] = {}
    n = len(rows)
    u = np.empty(n, np.int32)
    i = np.empty(n, np.int32)
    w = np.empty(n, np.float32)
    t = np.empty(n, np.int64)
    s = np.empty(n, np.int32)
    for k, (profile, pid, weight, at, store) in enumerate(rows):
        u[k] = users.setdefault(profile, len(users))
        if pid not in items:
            items[pid] = len(items)
            texts.append("")
        i[k] = items[pid]
        w[k] = weight
        t[k] = at
        s[k] = -1 if store is None else stores.setdefault(store, len(stores))
    return Interactions(u, i, w, t, s, list(users), list(items), list(stores)), texts


def read_segment_members(engine: Engine, workspace_id: str) -> list[tuple[str, str]]:
    """Who is in each of the workspace's segments now: (segment key, profile id) pairs."""
    m = segment_members.c
    with translate_errors("reading the segments' members"), engine.connect() as conn:
        rows = conn.execute(
            select(m.segment_key, m.profile_id).where(m.workspace_id == workspace_id)
        ).all()
    return [(str(key), str(profile)) for key, profile in rows]


def train(
    engine: Engine,
    workspace_id: str,
    *,
    progress: Callable[[str], None] = lambda _step: None,
    factors: int = 64,
) -> TrainingReport:
    """Fit every model on the workspace's interactions and store them as the new bundle."""
    seconds: dict[str, float] = {}

    def step(name: str) -> float:
        progress(name)
        return time.perf_counter()

    start = step(STEPS[0])
    data, texts = read_interactions(engine, workspace_id)
    seconds["reading"] = time.perf_counter() - start
    if len(data) == 0:  # nothing to learn from: keep what there is (nothing, or older)
        return TrainingReport(workspace_id, 0, 0, 0, len(data.item_ids), seconds)
    start = step(STEPS[1])
    popularity = Popularity.fit(data, members=read_segment_members(engine, workspace_id))
    seconds["popularity"] = time.perf_counter() - start
    start = step(STEPS[2])
    itemitem = ItemItem.fit(data)
    seconds["co-occurrence"] = time.perf_counter() - start
    start = step(STEPS[3])
    mf = Factors.fit(data, kind="als", factors=factors)
    mf.precompute()
    seconds["factors"] = time.perf_counter() - start
    start = step(STEPS[4])
    content = Content.fit(texts)
    seconds["content"] = time.perf_counter() - start
    start = step(STEPS[5])
    bundle = Bundle(data.item_ids, data.user_ids, data.store_ids, popularity, itemitem, mf, content)
    summary = {
        "interactions": len(data),
        "people": len(data.user_ids),
        "items": len(data.item_ids),
        "stores": len(data.store_ids),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    with translate_errors("saving the models"), writing(engine) as conn:
        version = save_bundle(conn, workspace_id, bundle.to_bytes(), summary)
    seconds["saving"] = time.perf_counter() - start
    return TrainingReport(
        workspace_id, version, len(data), len(data.user_ids), len(data.item_ids), seconds
    )


class Retrainer:
    """Trains a workspace's models in a background thread: every `every` seconds (None: only
    when asked) and whenever `request` is called; never two runs of one engine at a time."""

    def __init__(self, engine: Engine, workspace_id: str, *, every: float | None = None) -> None:
        self.engine = engine
        self.workspace_id = workspace_id
        self.every = every
        self.last: TrainingReport | None = None
        self.error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running = threading.Lock()
        self._thread: threading.Thread | None = None
        self._asked: float | None = None

    def request(self) -> bool:
        """Ask for a run now; False when one is already running (it will do)."""
        busy = self._running.locked()
        self._ensure_thread()
        self._wake.set()
        return not busy

    def request_if_idle(self, *, at_most_every: float = 60.0) -> None:
        """Ask for a run unless one ran or was asked for within `at_most_every` seconds."""
        now = time.monotonic()
        if self._asked is not None and now - self._asked < at_most_every:
            return
        self._asked = now
        self.request()

    @property
    def running(self) -> bool:
        return self._running.locked()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._loop, name=f"polku-recommend-train-{self.workspace_id}", daemon=True
            )
            self._thread.start()

    def start(self) -> None:
        self._ensure_thread()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def run_once(self) -> TrainingReport | None:
        with self._running:
            try:
                self.last = train(self.engine, self.workspace_id)
                self.error = None
            except Exception as exc:  # keep serving the last bundle; say why in the status
                logger.exception("recommendation training failed for %s", self.workspace_id)
                self.error = str(exc)
                return None
            return self.last

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.every)
            if self._stop.is_set():
                return
            self._wake.clear()
            self.run_once()
