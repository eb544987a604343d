"""Measuring the purchase-intent model on public data, once, on held-out rows.

* `evaluate_uci`: fit on the UCI Online Shoppers ``train.csv`` (hyper-parameters and the
  decision threshold chosen by cross-validation on it), then score ``test.csv`` once and
  report ROC-AUC, PR-AUC, F1 of the positive class and accuracy next to the published
  XGBoost result (`PUBLISHED`).

The event-level measurement (DIGINETICA, scored after the first k events) is in
`polku.signals.early`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    roc_auc_score,
)

from polku.signals.datasets import LabelledRows, read_uci
from polku.signals.training import DEFAULT_GRID, Progress, TrainingResult, train

__all__ = [
    "PUBLISHED",
    "PUBLISHED_NAME",
    "Metrics",
    "UciReport",
    "evaluate_uci",
    "format_uci",
    "metrics",
]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Figures of one model on one labelled set, at one decision threshold."""

    roc_auc: float
    pr_auc: float  # average precision
    f1: float  # of the positive class (bought)
    accuracy: float
    threshold: float
    rows: int
    positives: int


PUBLISHED_NAME: Final = "XGBoost (Abdullah-All-Tanvir et al. 2023, Heliyon 9(4):e15163)"
PUBLISHED: Final[dict[str, float]] = {
    "roc_auc": 0.937,
    "pr_auc": 0.754,
    "accuracy": 0.9065,
}
"""The published anchor on the UCI Online Shoppers data (their own split, feature selection
and oversampling; F1 not published)."""


def metrics(labels: npt.ArrayLike, probability: npt.ArrayLike, threshold: float) -> Metrics:
    """ROC-AUC, PR-AUC, F1 and accuracy of `probability` against `labels`."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probability, dtype=np.float64)
    decided = p >= threshold
    return Metrics(
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        f1=float(f1_score(y, decided, zero_division=0.0)),
        accuracy=float(accuracy_score(y, decided)),
        threshold=threshold,
        rows=len(y),
        positives=int(y.sum()),
    )


# --- UCI ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UciReport:
    """The UCI evaluation: the training run, the test figures and the test scores."""

    training: TrainingResult
    test: Metrics
    cv: Metrics  # out-of-fold figures on train.csv, for comparison
    labels: npt.NDArray[np.int64]  # test labels
    probability: npt.NDArray[np.float64]  # calibrated test probabilities
    train_source: str
    test_source: str


def evaluate_uci(
    folder: Path | str,
    *,
    limit: int | None = None,
    grid: Sequence[Mapping[str, Any]] = DEFAULT_GRID,
    folds: int = 5,
    seed: int = 468,
    progress: Progress | None = None,
) -> UciReport:
    """Fit on ``folder/train.csv``, report once on ``folder/test.csv`` (`limit`: only the
    first rows of each, for smoke runs)."""
    folder = Path(folder)
    train_rows: LabelledRows = read_uci(folder / "train.csv")
    test_rows: LabelledRows = read_uci(folder / "test.csv")
    if limit is not None:
        train_rows, test_rows = train_rows.head(limit), test_rows.head(limit)
    result = train(
        train_rows.rows,
        train_rows.labels,
        grid=grid,
        folds=folds,
        seed=seed,
        provenance={"trained_on": train_rows.source},
        progress=progress,
    )
    probability = result.model.probabilities(test_rows.rows)
    labels = np.asarray(test_rows.labels, dtype=np.int64)
    return UciReport(
        training=result,
        test=metrics(labels, probability, result.threshold),
        cv=metrics(train_rows.labels, result.oof_probability, result.threshold),
        labels=labels,
        probability=probability,
        train_source=train_rows.source,
        test_source=test_rows.source,
    )


def _row(name: str, values: Sequence[float | None]) -> str:
    cells = [f"{v:8.3f}" if v is not None else f"{'-':>8}" for v in values]
    return f"{name:<44}" + "".join(f" {c}" for c in cells)


def format_uci(report: UciReport) -> str:
    """The metrics table: test figures, train CV figures and the published anchor."""
    test, cv = report.test, report.cv
    header = f"{'':<44}" + "".join(f" {h:>8}" for h in ("ROC-AUC", "PR-AUC", "F1", "accuracy"))
    lines = [
        f"Train: {report.train_source} ({cv.rows} rows, {cv.positives} bought)",
        f"Test:  {report.test_source} ({test.rows} rows, {test.positives} bought)",
        f"Chosen by {report.training.model.meta.get('folds', 5)}-fold CV on train: "
        f"{report.training.params}, {report.training.rounds} rounds; "
        f"threshold {report.training.threshold:.3f} (best F1 out of fold)",
        "",
        header,
        _row(
            "Polku LightGBM, test.csv (held out)",
            [test.roc_auc, test.pr_auc, test.f1, test.accuracy],
        ),
        _row("Polku LightGBM, train.csv out-of-fold", [cv.roc_auc, cv.pr_auc, cv.f1, cv.accuracy]),
        _row(
            "Published XGBoost (Tanvir et al. 2023)",
            [PUBLISHED["roc_auc"], PUBLISHED["pr_auc"], None, PUBLISHED["accuracy"]],
        ),
        _row(
            "Always 'did not buy', test.csv",
            [0.5, test.positives / test.rows, 0.0, 1 - test.positives / test.rows],
        ),
    ]
    return "\n".join(lines)
