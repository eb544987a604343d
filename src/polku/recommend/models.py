"""The recommendation models, trained on interactions and kept as plain arrays.

Every model here learns from one `Interactions` (who did what with which item, when, where,
weighted by kind) and answers with the top items for a person's history or for an item. Each
serialises to a dict of numpy arrays (`arrays` / `from_arrays`), so a trained model is a row
in the database that any process loads without the training code's state, and serving never
waits for a training run.

- `Popularity`: weighted counts, global and per store, with a time decay (half-life).
- `ItemItem`: item-to-item co-occurrence over people's histories (``implicit``'s BM25- or
  cosine-weighted item-item recommender), kept as each item's top neighbours.
- `Factors`: matrix factorisation on implicit feedback, ALS or BPR from ``implicit``; a
  person unseen in training is folded in from their history (the ALS least-squares step).
- `Content`: TF-IDF (scikit-learn) over names, descriptions and categories, for products
  with no behaviour yet (cold start) and for people with very little.
- `Transitions`: which item people look at or buy next after an item (first-order Markov),
  the session model for anonymous visitors; the live counts are kept by the pipeline
  (`polku.recommend.sessions`), this is the batch counterpart for evaluation.

The heavy libraries are imported here only; the web layer imports this module lazily.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

__all__ = [
    "Content",
    "Factors",
    "Interactions",
    "ItemItem",
    "Popularity",
    "Transitions",
    "top_k",
]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]

_DAY_MS: Final = 86_400_000
NEIGHBOURS: Final = 50
SEGMENT_MIN_MEMBERS: Final = 5
"""Neighbours kept per item by the item-to-item models."""


@dataclass
class Interactions:
    """Interactions coded as indices: row i is person `users[i]` with item `items[i]`,
    weight `weights[i]` (negative for a return), at `times[i]` (epoch ms), in store
    `stores[i]` (-1 online). `user_ids`, `item_ids` and `store_ids` name the indices."""

    users: IntArray
    items: IntArray
    weights: FloatArray
    times: npt.NDArray[np.int64]
    stores: IntArray
    user_ids: list[str]
    item_ids: list[str]
    store_ids: list[str]

    def __len__(self) -> int:
        return len(self.users)

    def matrix(self) -> sparse.csr_matrix:
        """People x items, summed weights, returns subtracting; only positive cells kept."""
        m = sparse.csr_matrix(
            (self.weights.astype(np.float32), (self.users, self.items)),
            shape=(len(self.user_ids), len(self.item_ids)),
            dtype=np.float32,
        )
        m.sum_duplicates()
        m.data[m.data < 0] = 0
        m.eliminate_zeros()
        return m


def top_k(scores: FloatArray, k: int, exclude: Sequence[int] = ()) -> tuple[IntArray, FloatArray]:
    """The indices and scores of the `k` highest `scores`, best first, skipping `exclude`."""
    if len(exclude):
        scores = scores.copy()
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    k = min(k, len(scores))
    if k <= 0:
        return np.empty(0, np.int32), np.empty(0, np.float32)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    keep = np.isfinite(scores[order])
    return order[keep].astype(np.int32), scores[order][keep].astype(np.float32)


# -- popularity --------------------------------------------------------------------------------


@dataclass
class Popularity:
    """Weighted counts of each item: all-time, decayed by `half_life_days`, per store, and
    per customer segment (the journeys' segments: what the segment's members took to)."""

    overall: FloatArray
    decayed: FloatArray
    by_store: FloatArray  # stores x items, decayed
    half_life_days: float
    segment_ids: list[str] = field(default_factory=list)
    by_segment: FloatArray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    @classmethod
    def fit(
        cls,
        data: Interactions,
        *,
        half_life_days: float = 30.0,
        members: Sequence[tuple[str, str]] = (),
        min_members: int = SEGMENT_MIN_MEMBERS,
    ) -> Popularity:
        """Fit on `data`; `members` are (segment, person id) pairs, and a segment with
        fewer than `min_members` people in `data` gets no ranking of its own (too few to
        say what the segment likes, and too close to one person's history)."""
        n = len(data.item_ids)
        positive = np.maximum(data.weights, 0).astype(np.float64)
        overall = np.bincount(data.items, weights=positive, minlength=n).astype(np.float32)
        newest = int(data.times.max()) if len(data) else 0
        age = (newest - data.times).astype(np.float64) / _DAY_MS
        decay = positive * np.power(0.5, age / half_life_days)
        decayed = np.bincount(data.items, weights=decay, minlength=n).astype(np.float32)
        by_store = np.zeros((len(data.store_ids), n), np.float32)
        at_store = data.stores >= 0
        if at_store.any():
            np.add.at(by_store, (data.stores[at_store], data.items[at_store]), decay[at_store])
        segment_ids, by_segment = _by_segment(data, decay, members, min_members)
        return cls(overall, decayed, by_store, half_life_days, segment_ids, by_segment)

    def scores(self, *, store: int | None = None, decayed: bool = True) -> FloatArray:
        if store is not None and 0 <= store < len(self.by_store):
            # The store's own ranking first; the shop's breaks ties and fills the rest.
            base = self.decayed / (float(self.decayed.max()) or 1.0)
            mixed: FloatArray = (self.by_store[store] + 1e-3 * base).astype(np.float32)
            return mixed
        return self.decayed if decayed else self.overall

    def segment_scores(self, segment: int) -> FloatArray:
        """The decayed popularity among the members of segment index `segment`."""
        found: FloatArray = self.by_segment[segment]
        return found

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "overall": self.overall,
            "decayed": self.decayed,
            "by_store": self.by_store,
            "half_life_days": np.array([self.half_life_days]),
            "segment_ids": np.array(self.segment_ids, dtype=np.str_),
            "by_segment": self.by_segment,
        }

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]]) -> Popularity:
        # Bundles trained before segments had no segment arrays.
        segment_ids = [str(x) for x in a.get("segment_ids", np.array([], dtype=np.str_))]
        by_segment = a.get("by_segment", np.zeros((0, len(a["decayed"])), np.float32))
        return cls(
            a["overall"],
            a["decayed"],
            a["by_store"],
            float(a["half_life_days"][0]),
            segment_ids,
            by_segment,
        )


def _by_segment(
    data: Interactions,
    decay: npt.NDArray[np.float64],
    members: Sequence[tuple[str, str]],
    min_members: int,
) -> tuple[list[str], FloatArray]:
    """Segments x items: the sum of each member's decayed interactions."""
    n = len(data.item_ids)
    person = {p: i for i, p in enumerate(data.user_ids)}
    who: dict[str, list[int]] = {}
    for segment, profile in members:
        index = person.get(profile)
        if index is not None:
            who.setdefault(segment, []).append(index)
    kept = sorted(s for s, people in who.items() if len(people) >= min_members)
    if not kept:
        return [], np.zeros((0, n), np.float32)
    taken = sparse.csr_matrix(
        (decay, (data.users, data.items)), shape=(len(data.user_ids), n), dtype=np.float64
    )
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[int] = []
    for k, segment in enumerate(kept):
        rows.append(np.full(len(who[segment]), k, np.int64))
        cols.extend(who[segment])
    membership = sparse.csr_matrix(
        (np.ones(len(cols)), (np.concatenate(rows), np.array(cols, np.int64))),
        shape=(len(kept), len(data.user_ids)),
    )
    by_segment = np.asarray((membership @ taken).todense(), dtype=np.float32)
    return kept, by_segment


# -- neighbours (shared by item-item, content and transitions) ---------------------------------


@dataclass
class Neighbours:
    """Each item's top neighbours: `index[i]` (-1 padded) with `score[i]`."""

    index: IntArray
    score: FloatArray

    @classmethod
    def from_similarity(
        cls, sim: sparse.csr_matrix, k: int = NEIGHBOURS, *, offset: int = 0
    ) -> Neighbours:
        """The top `k` of each row of `sim`; row i is item ``offset + i`` (never its own
        neighbour)."""
        n = sim.shape[0]
        index = np.full((n, k), -1, np.int32)
        score = np.zeros((n, k), np.float32)
        sim = sim.tocsr()
        for i in range(n):
            start, end = sim.indptr[i], sim.indptr[i + 1]
            cols, vals = sim.indices[start:end], sim.data[start:end]
            keep = (cols != offset + i) & (vals > 0)
            cols, vals = cols[keep], vals[keep]
            if len(cols) > k:
                part = np.argpartition(-vals, k - 1)[:k]
                cols, vals = cols[part], vals[part]
            order = np.argsort(-vals, kind="stable")
            index[i, : len(order)] = cols[order]
            score[i, : len(order)] = vals[order]
        return cls(index, score)

    def of(self, item: int) -> tuple[IntArray, FloatArray]:
        row = self.index[item]
        keep = row >= 0
        return row[keep], self.score[item][keep]

    def spread(self, history: Sequence[int], weights: Sequence[float], n_items: int) -> FloatArray:
        """Scores of all items: the sum over `history` of each item's neighbour scores."""
        out = np.zeros(n_items, np.float32)
        for item, w in zip(history, weights, strict=True):
            if 0 <= item < len(self.index):
                idx, sc = self.of(item)
                np.add.at(out, idx, sc * np.float32(w))
        return out

    def arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {f"{prefix}_index": self.index, f"{prefix}_score": self.score}

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]], prefix: str) -> Neighbours:
        return cls(a[f"{prefix}_index"], a[f"{prefix}_score"])


def _blas_single_thread() -> Any:
    """implicit wants BLAS single-threaded (it parallelises itself) and warns otherwise."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


class ItemItem:
    """Item-to-item co-occurrence over people's histories ("bought together", "viewed
    together"), BM25-weighted (``implicit.nearest_neighbours.BM25Recommender``)."""

    def __init__(self, neighbours: Neighbours) -> None:
        self.neighbours = neighbours

    @classmethod
    def fit(cls, data: Interactions, *, k: int = NEIGHBOURS, kind: str = "bm25") -> ItemItem:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        model = BM25Recommender(K=k) if kind == "bm25" else CosineRecommender(K=k)
        with _blas_single_thread(), warnings.catch_warnings():
            # implicit's own BM25 weighting hands its kNN a COO matrix, and then warns.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(data.matrix(), show_progress=False)
        return cls(Neighbours.from_similarity(model.similarity.tocsr(), k))

    def scores(self, history: Sequence[int], weights: Sequence[float], n_items: int) -> FloatArray:
        return self.neighbours.spread(history, weights, n_items)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return self.neighbours.arrays("itemitem")

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]]) -> ItemItem:
        return cls(Neighbours.from_arrays(a, "itemitem"))


# -- matrix factorisation ----------------------------------------------------------------------


class Factors:
    """Latent factors from ``implicit``: ALS (weighted confidence) or BPR (pairwise ranking).
    Scores are ``user_factors @ item_factors.T``; BPR's item bias rides in the last column."""

    def __init__(
        self,
        user_factors: FloatArray,
        item_factors: FloatArray,
        regularization: float,
        alpha: float,
        kind: str,
    ) -> None:
        self.user_factors = user_factors
        self.item_factors = item_factors
        self.regularization = regularization
        self.alpha = alpha
        self.kind = kind
        self._gram: FloatArray | None = None
        self.user_top: IntArray | None = None  # each known person's best items, precomputed
        self.user_top_scores: FloatArray | None = None

    def precompute(self, k: int = 100, chunk: int = 512) -> None:
        """Each trained person's top `k` items, so serving a known person costs no scoring
        over the whole catalogue."""
        n_users, n_items = len(self.user_factors), len(self.item_factors)
        k = min(k, n_items)
        top = np.zeros((n_users, k), np.int32)
        top_scores = np.zeros((n_users, k), np.float32)
        if k == 0:
            self.user_top, self.user_top_scores = top, top_scores
            return
        for start in range(0, n_users, chunk):
            block = self.user_factors[start : start + chunk] @ self.item_factors.T
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            top[start : start + chunk] = np.take_along_axis(part, order, axis=1)
            top_scores[start : start + chunk] = np.take_along_axis(vals, order, axis=1)
        self.user_top, self.user_top_scores = top, top_scores

    @classmethod
    def fit(
        cls,
        data: Interactions,
        *,
        kind: str = "als",
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.05,
        alpha: float = 2.0,
        seed: int = 7,
    ) -> Factors:
        matrix = data.matrix()
        matrix.data = np.log1p(matrix.data).astype(np.float32)  # damp bulk orders
        with _blas_single_thread():
            if kind == "als":
                from implicit.cpu.als import AlternatingLeastSquares

                als = AlternatingLeastSquares(
                    factors=factors,
                    regularization=regularization,
                    alpha=alpha,
                    iterations=iterations,
                    random_state=seed,
                )
                als.fit(matrix, show_progress=False)
                users, items = als.user_factors, als.item_factors
            else:
                from implicit.cpu.bpr import BayesianPersonalizedRanking

                bpr = BayesianPersonalizedRanking(
                    factors=factors,
                    iterations=iterations * 10,
                    learning_rate=0.05,
                    regularization=regularization,
                    random_state=seed,
                )
                bpr.fit(matrix, show_progress=False)
                users, items = bpr.user_factors, bpr.item_factors
        return cls(
            np.ascontiguousarray(users, np.float32),
            np.ascontiguousarray(items, np.float32),
            regularization,
            alpha,
            kind,
        )

    def user_vector(
        self, user: int | None, history: Sequence[int], weights: Sequence[float]
    ) -> FloatArray | None:
        """The person's factors: learnt, or folded in from `history` when not in training."""
        if user is not None and 0 <= user < len(self.user_factors):
            learnt: FloatArray = self.user_factors[user]
            return learnt
        pairs = [(i, w) for i, w in zip(history, weights, strict=True) if i >= 0 and w > 0]
        if not pairs:
            return None
        items = np.array([i for i, _ in pairs], np.int64)
        conf = np.log1p(np.array([w for _, w in pairs], np.float32)) * self.alpha
        y = self.item_factors[items]
        if self.kind != "als":  # BPR: average the history's factors (bias column kept at 1)
            vec: FloatArray = y.mean(axis=0).astype(np.float32)
            vec[-1] = 1.0
            return vec
        if self._gram is None:
            self._gram = (self.item_factors.T @ self.item_factors).astype(np.float32)
        # One ALS user step: (YtY + Yi^T (Ci - I) Yi + lambda I) x = Yi^T Ci p
        a = self._gram + (y.T * conf) @ y + self.regularization * np.eye(y.shape[1])
        b = (y.T * (1.0 + conf)).sum(axis=1)
        return np.linalg.solve(a, b).astype(np.float32)

    def scores(
        self, user: int | None, history: Sequence[int], weights: Sequence[float]
    ) -> FloatArray | None:
        vec = self.user_vector(user, history, weights)
        if vec is None:
            return None
        return (self.item_factors @ vec).astype(np.float32)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        out = {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "params": np.array([self.regularization, self.alpha]),
            "kind": np.array([self.kind]),
        }
        if self.user_top is not None and self.user_top_scores is not None:
            out.update(user_top=self.user_top, user_top_scores=self.user_top_scores)
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]]) -> Factors:
        found = cls(
            a["user_factors"],
            a["item_factors"],
            float(a["params"][0]),
            float(a["params"][1]),
            str(a["kind"][0]),
        )
        if "user_top" in a:
            found.user_top, found.user_top_scores = a["user_top"], a["user_top_scores"]
        return found


# -- content -----------------------------------------------------------------------------------


class Content:
    """TF-IDF over each item's text (name, description, category, brand), cosine neighbours."""

    def __init__(self, neighbours: Neighbours) -> None:
        self.neighbours = neighbours

    @classmethod
    def fit(cls, texts: Sequence[str], *, k: int = NEIGHBOURS, chunk: int = 2000) -> Content:
        from sklearn.feature_extraction.text import TfidfVectorizer

        n = len(texts)
        empty = Neighbours(np.full((n, k), -1, np.int32), np.zeros((n, k), np.float32))
        if n == 0:
            return cls(empty)
        # Words in more than a tenth of the catalogue ("set", "the", a brand of everything)
        # say little about similarity and would make every pair similar: left out.
        vectoriser = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            max_features=200_000,
            max_df=0.1 if n >= 100 else 1.0,
        )
        try:
            x = vectoriser.fit_transform([t or "" for t in texts]).astype(np.float32).tocsr()
        except ValueError:  # every text empty, or only common words: no vocabulary
            return cls(empty)
        xt = x.T.tocsr()
        parts = [
            Neighbours.from_similarity(x[start : start + chunk] @ xt, k, offset=start)
            for start in range(0, n, chunk)
        ]
        return cls(
            Neighbours(
                np.concatenate([p.index for p in parts]), np.concatenate([p.score for p in parts])
            )
        )

    def scores(self, history: Sequence[int], weights: Sequence[float], n_items: int) -> FloatArray:
        return self.neighbours.spread(history, weights, n_items)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return self.neighbours.arrays("content")

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]]) -> Content:
        return cls(Neighbours.from_arrays(a, "content"))


# -- transitions -------------------------------------------------------------------------------


class Transitions:
    """Next item after an item, from each person's time-ordered interactions."""

    def __init__(self, neighbours: Neighbours) -> None:
        self.neighbours = neighbours

    @classmethod
    def fit(cls, data: Interactions, *, k: int = NEIGHBOURS) -> Transitions:
        order = np.lexsort((data.times, data.users))
        users, items = data.users[order], data.items[order]
        keep = data.weights[order] > 0
        users, items = users[keep], items[keep]
        same = (users[1:] == users[:-1]) & (items[1:] != items[:-1])
        n = len(data.item_ids)
        counts = sparse.csr_matrix(
            (np.ones(int(same.sum()), np.float32), (items[:-1][same], items[1:][same])),
            shape=(n, n),
        )
        counts.sum_duplicates()
        # Row-normalise: the share of what came next after this item.
        totals = np.asarray(counts.sum(axis=1)).ravel()
        totals[totals == 0] = 1
        counts = sparse.diags(1.0 / totals).astype(np.float32) @ counts
        return cls(Neighbours.from_similarity(counts.tocsr(), k))

    def scores(self, recent: Sequence[int], n_items: int) -> FloatArray:
        """Scores after the `recent` items (newest last), the newest weighing most."""
        weights = [0.5 ** (len(recent) - 1 - i) for i in range(len(recent))]
        return self.neighbours.spread(recent, weights, n_items)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return self.neighbours.arrays("transitions")

    @classmethod
    def from_arrays(cls, a: dict[str, npt.NDArray[Any]]) -> Transitions:
        return cls(Neighbours.from_arrays(a, "transitions"))
