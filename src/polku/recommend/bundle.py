"""A workspace's trained models as one bundle: ids, and each model's arrays.

A bundle is what training writes (`recommend_models.payload`, an ``.npz`` of plain arrays,
loaded with ``allow_pickle=False`` so a payload can never run code) and what serving holds
in memory. Indices are shared by every model: item ``i`` is ``item_ids[i]`` everywhere.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from polku.recommend.models import (
    Content,
    Factors,
    FloatArray,
    IntArray,
    ItemItem,
    Popularity,
    top_k,
)

__all__ = ["Bundle"]


@dataclass
class Bundle:
    item_ids: list[str]
    user_ids: list[str]
    store_ids: list[str]
    popularity: Popularity
    itemitem: ItemItem
    factors: Factors
    content: Content
    version: int = 0
    trained_at: int = 0
    item_index: dict[str, int] = field(default_factory=dict)
    user_index: dict[str, int] = field(default_factory=dict)
    store_index: dict[str, int] = field(default_factory=dict)
    segment_index: dict[str, int] = field(default_factory=dict)

    _popular: dict[tuple[int | None, int], tuple[IntArray, FloatArray]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.store_index = {s: i for i, s in enumerate(self.store_ids)}
        self.segment_index = {s: i for i, s in enumerate(self.popularity.segment_ids)}

    def popular_top(self, store: int | None, k: int) -> tuple[IntArray, FloatArray]:
        """The `k` most popular items (at store index `store`, or overall), kept once
        computed: they only change with the bundle."""
        key = (store, k)
        found = self._popular.get(key)
        if found is None:
            found = self._popular[key] = top_k(self.popularity.scores(store=store), k)
        return found

    def popular_in_segment(self, segment: int, k: int) -> tuple[IntArray, FloatArray]:
        """The `k` most popular items among segment index `segment`'s members, kept once
        computed."""
        key = (-1 - segment, k)  # negative: never a store index
        found = self._popular.get(key)
        if found is None:
            found = self._popular[key] = top_k(self.popularity.segment_scores(segment), k)
        return found

    def to_bytes(self) -> bytes:
        arrays: dict[str, npt.NDArray[Any]] = {
            "item_ids": np.array(self.item_ids, dtype=np.str_),
            "user_ids": np.array(self.user_ids, dtype=np.str_),
            "store_ids": np.array(self.store_ids, dtype=np.str_),
        }
        for prefix, model in (
            ("pop", self.popularity),
            ("ii", self.itemitem),
            ("mf", self.factors),
            ("ct", self.content),
        ):
            arrays.update({f"{prefix}.{k}": v for k, v in model.arrays().items()})
        out = io.BytesIO()
        np.savez(out, **arrays)  # type: ignore[arg-type]
        return out.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, *, version: int = 0, trained_at: int = 0) -> Bundle:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            a = {name: npz[name] for name in npz.files}

        def part(prefix: str) -> dict[str, npt.NDArray[Any]]:
            return {k.split(".", 1)[1]: v for k, v in a.items() if k.startswith(prefix + ".")}

        return cls(
            item_ids=[str(x) for x in a["item_ids"]],
            user_ids=[str(x) for x in a["user_ids"]],
            store_ids=[str(x) for x in a["store_ids"]],
            popularity=Popularity.from_arrays(part("pop")),
            itemitem=ItemItem.from_arrays(part("ii")),
            factors=Factors.from_arrays(part("mf")),
            content=Content.from_arrays(part("ct")),
            version=version,
            trained_at=trained_at,
        )
