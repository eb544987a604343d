"""Offline evaluation on the UCI Online Retail data set, every model side by side in one run.

Method (docs/recommendations.md): invoice lines with a customer id and a product stock code
(codes starting with a digit: postage, fees and manual lines are not products) are
interactions; a purchase weighs its quantity (log-damped in the factor models), a
cancellation (invoice ``C...``) is a return and subtracts. The split is temporal: every model
trains on what happened before `cut`, and is tested on each customer who bought both before
and after it, against the distinct products they bought after it. Previously bought products
may be recommended (a gift shop's customers re-order; the data's own repeat rate decides).
Metrics: recall@10 and @20 (hits / relevant items), NDCG@20 (binary gains), MAP@12
(precision at each hit / min(relevant, 12)), catalogue coverage (share of the trained
catalogue that appears in anybody's top 20), and each model's training time.
"""

from __future__ import annotations

import csv
import gzip
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np

from polku.errors import InvalidField
from polku.recommend.models import (
    Content,
    Factors,
    FloatArray,
    Interactions,
    ItemItem,
    Popularity,
    Transitions,
    top_k,
)

__all__ = ["DEFAULT_CUT", "MODELS", "Result", "Split", "evaluate", "load_split", "plot", "table"]

DEFAULT_CUT: Final = "2011-09-01"
MODELS: Final = 8  # rows of the table `evaluate` returns
CANDIDATES: Final = 20


@dataclass
class Split:
    train: Interactions
    texts: list[str]  # per item: its descriptions
    test: dict[int, set[int]]  # user -> items bought after the cut
    country_of: dict[int, int]  # user -> store index (the country, as a store stand-in)
    cut: str
    test_lines: int


@dataclass
class Result:
    model: str
    recall10: float
    recall20: float
    ndcg20: float
    map12: float
    coverage: float
    train_seconds: float


def _open(folder: Path) -> Iterable[dict[str, str]]:
    path = folder / "online_retail.csv.gz"
    if not path.exists():
        raise InvalidField(
            f"{path} does not exist.",
            field="data",
            hint="Point --data at the folder holding online_retail.csv.gz "
            "(../shared/data/uci_online_retail from the project root).",
        )
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def load_split(folder: Path, cut: str = DEFAULT_CUT) -> Split:
    """Read the data set and split it at `cut` (YYYY-MM-DD)."""
    try:
        cut_ms = int(datetime.fromisoformat(cut).timestamp() * 1000)
    except ValueError:
        raise InvalidField(
            f"{cut!r} is not a date.", field="cut", hint="Give the cut as YYYY-MM-DD."
        ) from None
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    stores: dict[str, int] = {}
    texts: dict[int, str] = {}
    rows: list[tuple[int, int, float, int, int]] = []
    after: list[tuple[int, int]] = []
    country_of: dict[int, int] = {}
    for line in _open(folder):
        customer, code = line["CustomerID"], line["StockCode"].strip().upper()
        if not customer or not code[:1].isdigit():
            continue
        try:
            quantity = float(line["Quantity"])
            at = int(datetime.fromisoformat(line["InvoiceDate"]).timestamp() * 1000)
        except ValueError:
            continue
        returned = line["InvoiceNo"].startswith("C") or quantity < 0
        if at >= cut_ms:
            if not returned:
                after.append((users.setdefault(customer, len(users)), items.get(code, -1)))
            continue
        u = users.setdefault(customer, len(users))
        i = items.setdefault(code, len(items))
        s = stores.setdefault(line["Country"], len(stores))
        country_of[u] = s
        if line["Description"] and i not in texts:
            texts[i] = line["Description"]
        weight = -abs(quantity) if returned else abs(quantity)
        rows.append((u, i, weight, at, s))
    arr = np.array(rows, dtype=np.float64)
    train = Interactions(
        users=arr[:, 0].astype(np.int32),
        items=arr[:, 1].astype(np.int32),
        weights=arr[:, 2].astype(np.float32),
        times=arr[:, 3].astype(np.int64),
        stores=arr[:, 4].astype(np.int32),
        user_ids=list(users),
        item_ids=list(items),
        store_ids=list(stores),
    )
    trained_users = set(train.users.tolist())
    test: dict[int, set[int]] = defaultdict(set)
    for u, i in after:
        if u in trained_users:
            test[u].add(i)  # -1: a product new after the cut, which no model can name
    return Split(
        train=train,
        texts=[texts.get(i, "") for i in range(len(items))],
        test=dict(test),
        country_of=country_of,
        cut=cut,
        test_lines=len(after),
    )


def _metrics(
    name: str, ranked: dict[int, list[int]], test: dict[int, set[int]], n_items: int, secs: float
) -> Result:
    r10 = r20 = ndcg = ap = 0.0
    seen: set[int] = set()
    for u, relevant in test.items():
        recs = ranked.get(u, [])[:CANDIDATES]
        seen.update(recs)
        hits = [1 if i in relevant else 0 for i in recs]
        r10 += sum(hits[:10]) / len(relevant)
        r20 += sum(hits) / len(relevant)
        dcg = sum(h / math.log2(pos + 2) for pos, h in enumerate(hits))
        idcg = sum(1 / math.log2(pos + 2) for pos in range(min(len(relevant), CANDIDATES)))
        ndcg += dcg / idcg
        found = precision = 0.0
        for pos, h in enumerate(hits[:12]):
            if h:
                found += 1
                precision += found / (pos + 1)
        ap += precision / min(len(relevant), 12)
    n = len(test) or 1
    return Result(name, r10 / n, r20 / n, ndcg / n, ap / n, len(seen) / max(1, n_items), secs)


def _histories(data: Interactions) -> dict[int, tuple[list[int], list[float]]]:
    net: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for u, i, w in zip(
        data.users.tolist(), data.items.tolist(), data.weights.tolist(), strict=True
    ):
        net[u][i] += w
    return {
        u: ([i for i, w in got.items() if w > 0], [w for w in got.values() if w > 0])
        for u, got in net.items()
    }


def _recent(data: Interactions, n: int = 5) -> dict[int, list[int]]:
    order = np.lexsort((data.times, data.users))
    by_user: dict[int, list[int]] = defaultdict(list)
    for u, i, w in zip(
        data.users[order].tolist(),
        data.items[order].tolist(),
        data.weights[order].tolist(),
        strict=True,
    ):
        if w > 0:
            seq = by_user[u]
            if i in seq:
                seq.remove(i)
            seq.append(i)
    return {u: seq[-n:] for u, seq in by_user.items()}


def evaluate(
    split: Split,
    *,
    progress: Callable[[str], None] = lambda _name: None,
    new_only: bool = False,
) -> list[Result]:
    """Train every model on `split.train` and score it on `split.test`, in one table.

    `new_only`: the protocol of a shop that never shows what the person bought: products a
    customer bought before the cut are left out of both their recommendations and their
    test set (customers left with nothing to find are dropped)."""
    data, test = split.train, split.test
    n = len(data.item_ids)
    histories = _histories(data)
    results: list[Result] = []
    if new_only:
        test = {u: left for u, items in test.items() if (left := items - set(histories[u][0]))}

    def run(
        name: str, fit: Callable[[], object], rank: Callable[[object, int], FloatArray]
    ) -> None:
        progress(name)
        start = time.perf_counter()
        model = fit()
        secs = time.perf_counter() - start
        ranked = {
            u: top_k(rank(model, u), CANDIDATES, hist(u)[0] if new_only else ())[0].tolist()
            for u in test
        }
        results.append(_metrics(name, ranked, test, n, secs))

    def hist(u: int) -> tuple[list[int], list[float]]:
        return histories.get(u, ([], []))

    def pop_rank(m: object, _u: int) -> FloatArray:
        assert isinstance(m, Popularity)
        return m.scores(decayed=False)

    def decayed_rank(m: object, _u: int) -> FloatArray:
        assert isinstance(m, Popularity)
        return m.scores()

    def store_rank(m: object, u: int) -> FloatArray:
        assert isinstance(m, Popularity)
        return m.scores(store=split.country_of.get(u))

    def itemitem_rank(m: object, u: int) -> FloatArray:
        assert isinstance(m, ItemItem)
        return m.scores(*hist(u), n)

    def factors_rank(m: object, u: int) -> FloatArray:
        assert isinstance(m, Factors)
        got = m.scores(u, *hist(u))
        return got if got is not None else np.zeros(n, np.float32)

    def content_rank(m: object, u: int) -> FloatArray:
        assert isinstance(m, Content)
        items, weights = hist(u)
        return m.scores(items, [math.log1p(w) for w in weights], n)

    recent = _recent(data)

    def transitions_rank(m: object, u: int) -> FloatArray:
        assert isinstance(m, Transitions)
        return m.scores(recent.get(u, []), n)

    run("popularity (baseline)", lambda: Popularity.fit(data), pop_rank)
    run("popularity, time-decayed", lambda: Popularity.fit(data), decayed_rank)
    run("popularity per country", lambda: Popularity.fit(data), store_rank)
    run("item-item co-occurrence (BM25)", lambda: ItemItem.fit(data), itemitem_rank)
    run("ALS (implicit)", lambda: Factors.fit(data, kind="als"), factors_rank)
    run("BPR (implicit)", lambda: Factors.fit(data, kind="bpr"), factors_rank)
    run("content TF-IDF", lambda: Content.fit(split.texts), content_rank)
    run("session next item", lambda: Transitions.fit(data), transitions_rank)
    return results


def table(results: list[Result], baseline: str = "popularity (baseline)") -> str:
    """The results as a Markdown table, with each model's recall@20 over the baseline's."""
    base = next((r.recall20 for r in results if r.model == baseline), 0.0) or float("nan")
    lines = [
        "| model | recall@10 | recall@20 | NDCG@20 | MAP@12 | coverage | R@20 vs baseline "
        "| train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.recall10:.4f} | {r.recall20:.4f} | {r.ndcg20:.4f} "
            f"| {r.map12:.4f} | {r.coverage:.1%} | {r.recall20 / base:.2f} "
            f"| {r.train_seconds:.2f} |"
        )
    return "\n".join(lines)


def plot(results: list[Result], path: Path) -> None:
    """A bar chart of recall@20 and NDCG@20 per model (needs matplotlib: the `evaluate`
    extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InvalidField(
            "Plotting needs matplotlib.",
            field="plot",
            hint="pip install 'polku[evaluate]', or leave --plot out.",
        ) from exc
    names = [r.model for r in results]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.5))
    ax.barh(y - 0.2, [r.recall20 for r in results], height=0.4, label="recall@20")
    ax.barh(y + 0.2, [r.ndcg20 for r in results], height=0.4, label="NDCG@20")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("score (higher is better)")
    ax.set_title("UCI Online Retail, temporal split: every model side by side")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
