"""Purchase-intent model: microseconds to score one live feature row, with and without reasons.

    .venv/bin/python benchmarks/signals/model_scoring.py [--rows 2000] [--repeats 7]

The shipped default model (`polku.signals.model.IntentModel.load()`) scores UCI-shaped rows
made by the live feature code from the demo simulator's sessions (no external data), one at
a time, as the consumer does for one event: `score` (probability + SHAP reasons in both
languages), `probability` (the number only), and `score_many` (a batch, per row). The
figure is the median of the repeats; the budget is 200 µs per row for `score` (issue 5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import banner

from polku.signals.model import IntentModel
from polku.signals.synthetic import synthetic_rows

BUDGET_US = 200.0


def _per_row(call: Callable[[], object], n: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(banner("signals model scoring benchmark"))
    model = IntentModel.load()
    rows = synthetic_rows(600, seed=11).rows[: args.rows]
    n = len(rows)
    for row in rows[:200]:  # warm up
        model.score(row)

    def one_by_one(method: Callable[[dict[str, object]], object]) -> Callable[[], object]:
        return lambda: [method(row) for row in rows]

    score = _per_row(one_by_one(model.score), n, args.repeats)
    probability = _per_row(one_by_one(model.probability), n, args.repeats)
    batch = _per_row(lambda: model.score_many(rows), n, args.repeats)
    print(f"rows: {n} (the default model, {len(model.columns)} features)")
    print(
        f"score (probability + reasons), one row: {score:7.1f} µs  "
        f"({score / BUDGET_US:.2f} x the {BUDGET_US:.0f} µs budget)"
    )
    print(f"probability only, one row:            {probability:7.1f} µs")
    print(f"score_many, per row of a batch:       {batch:7.1f} µs")


if __name__ == "__main__":
    main()
