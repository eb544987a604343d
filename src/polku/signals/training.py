"""Training the purchase-intent model: cross-validated choice, calibration, threshold, fit.

`train` takes feature rows in the raw UCI value shapes and their labels and returns an
`IntentModel`, in four steps that use the training rows only:

1. **choose**: each hyper-parameter set of the grid is cross-validated (stratified folds,
   early stopping on the held-out fold's ROC-AUC); of the sets whose mean ROC-AUC is within
   one standard error of the best, the cheapest to score (rounds x leaves) wins, with its
   mean best number of rounds;
2. **calibrate**: out-of-fold raw scores of the chosen set are mapped to probabilities by
   isotonic regression, kept as one point per block so that interpolation between them is
   strictly increasing (`isotonic_map`; stored as JSON);
3. **threshold**: the calibrated out-of-fold probability that maximises F1 of the positive
   class becomes the model's decision threshold;
4. **fit**: one booster on all the rows with the chosen set and number of rounds.

Everything is seeded and LightGBM runs in its deterministic mode, so the same rows and seed
give the same model files.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from polku.errors import BadRequest
from polku.signals.model import MODEL_COLUMNS, IntentModel, encode_rows

__all__ = [
    "DEFAULT_GRID",
    "QUICK_GRID",
    "Progress",
    "TrainingError",
    "TrainingResult",
    "best_f1_threshold",
    "isotonic_map",
    "train",
]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)``: what is being done, and how far along."""

_BASE: Final[dict[str, Any]] = {
    "objective": "binary",
    "metric": "auc",
    "learning_rate": 0.03,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}

DEFAULT_GRID: Final[tuple[dict[str, Any], ...]] = tuple(
    {"num_leaves": leaves, "min_child_samples": child, "feature_fraction": fraction}
    for leaves, child, fraction in itertools.product((7, 15, 31), (20, 50), (0.7, 1.0))
)
"""The hyper-parameter sets `train` cross-validates by default (12 sets)."""

QUICK_GRID: Final[tuple[dict[str, Any], ...]] = (
    {"num_leaves": 7, "min_child_samples": 20, "feature_fraction": 1.0, "learning_rate": 0.1},
    {"num_leaves": 15, "min_child_samples": 50, "feature_fraction": 0.7, "learning_rate": 0.1},
)
"""Two sets at a higher learning rate (fewer rounds), for smoke runs and tests."""

_MAX_ROUNDS: Final = 2000
_PATIENCE: Final = 100


class TrainingError(BadRequest):
    """Rows that cannot train a model (too few, one class only)."""

    code = "training_invalid"


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """The trained model and what the cross-validation saw on the training rows."""

    model: IntentModel
    params: dict[str, Any]
    rounds: int
    cv_auc: float  # mean held-out ROC-AUC of the chosen set
    threshold: float
    oof_probability: npt.NDArray[np.float64]  # calibrated, out of fold
    oof_raw: npt.NDArray[np.float64]  # the booster's raw scores, out of fold
    grid_auc: list[tuple[dict[str, Any], float, int]] = field(default_factory=list)
    """Each set of the grid: its parameters, mean held-out ROC-AUC and mean best rounds."""


def best_f1_threshold(labels: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """The probability cut that maximises F1 of the positive class (``p >= cut`` is a yes)."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probability, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    true_pos = np.cumsum(y_sorted)
    # The cut at each distinct value keeps every row scored at least that value.
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    kept = np.arange(1, len(p) + 1)[last]
    tp = true_pos[last]
    f1 = 2 * tp / (kept + y.sum())
    return float(p_sorted[last][int(np.argmax(f1))])


def isotonic_map(
    raw: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]
) -> tuple[list[float], list[float]]:
    """Breakpoints of a calibration map from raw scores to probabilities: isotonic
    regression, then one point per block of equal fitted probability, at the block's mean
    raw score. Interpolating between those points keeps the map strictly increasing, so
    calibration never ties two sessions the booster ranked apart (a step map put whole
    blocks on one probability, and lost ranking: 0.0014 of ROC-AUC on the UCI test set)."""
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    fitted = isotonic.fit_transform(raw, labels)
    order = np.argsort(raw, kind="stable")
    xs, ys = raw[order], fitted[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ys) != 0) + 1]
    ends = np.r_[starts[1:], len(ys)]
    cal_x = [float(xs[a:b].mean()) for a, b in zip(starts, ends, strict=True)]
    cal_y = [float(ys[a]) for a in starts]
    if len(cal_x) < 2:  # one block: every out-of-fold score calibrates the same
        cal_x, cal_y = [cal_x[0] - 1.0, cal_x[0] + 1.0], [cal_y[0], cal_y[0]]
    return cal_x, cal_y


def _simplest_within_one_error(
    grid_auc: Sequence[tuple[dict[str, Any], float, int]],
    errors: Sequence[float],
    base: Mapping[str, Any],
) -> tuple[dict[str, Any], float, int]:
    """The cheapest set (fewest rounds x leaves, what a prediction and its SHAP values cost)
    whose mean AUC is within one standard error of the best: the grid's sets differ by less
    than their noise, and the cheaper model keeps `IntentModel.score` fast."""
    best = max(range(len(grid_auc)), key=lambda i: grid_auc[i][1])
    floor = grid_auc[best][1] - errors[best]

    def cost(entry: tuple[dict[str, Any], float, int]) -> tuple[int, float]:
        leaves = int(entry[0].get("num_leaves", base.get("num_leaves", 31)))
        return (entry[2] * leaves, -entry[1])

    return min((entry for entry in grid_auc if entry[1] >= floor), key=cost)


def _check(labels: npt.NDArray[np.int64], folds: int) -> None:
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if min(positives, negatives) < folds:
        raise TrainingError(
            f"Training needs at least {folds} sessions that bought and {folds} that did not "
            f"(got {positives} and {negatives}).",
            field="Revenue",
            hint="Give more rows, with both labels.",
        )


def train(
    rows: Sequence[Mapping[str, object]],
    labels: Sequence[bool],
    *,
    columns: Sequence[str] = MODEL_COLUMNS,
    grid: Sequence[Mapping[str, Any]] = DEFAULT_GRID,
    folds: int = 5,
    groups: Sequence[object] | None = None,
    seed: int = 468,
    threads: int = 1,
    provenance: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Fit a purchase-intent model on `rows` (see the module doc for the steps).

    `groups` (one per row) keeps rows of one group in one fold: several rows of one session
    (after each of its events) must not be fitted and judged in the same round. `threads`
    is LightGBM's: one by default, as the data sets are small and OpenMP's thread team made
    training many times slower on a busy machine."""
    report = progress or (lambda step, done, total: None)
    x = encode_rows(rows, columns)
    y = np.asarray(labels, dtype=np.int64)
    _check(y, folds)
    if groups is None:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(x, y))
    else:
        grouped = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        splits = list(grouped.split(x, y, groups=list(groups)))
    base = {**_BASE, "seed": seed, "num_threads": threads}
    names = list(columns)
    total = len(grid) + folds + 1
    done = 0

    grid_auc: list[tuple[dict[str, Any], float, int]] = []
    errors: list[float] = []  # standard error of each set's mean AUC over the folds
    for candidate in grid:
        params = {**base, **candidate}
        aucs, rounds = [], []
        for fit_idx, held_idx in splits:
            booster = lgb.train(
                params,
                lgb.Dataset(x[fit_idx], y[fit_idx], feature_name=names),
                num_boost_round=_MAX_ROUNDS,
                valid_sets=[lgb.Dataset(x[held_idx], y[held_idx], feature_name=names)],
                callbacks=[lgb.early_stopping(_PATIENCE, verbose=False)],
            )
            best = booster.best_iteration or _MAX_ROUNDS
            held = booster.predict(x[held_idx], num_iteration=best, raw_score=True)
            aucs.append(float(roc_auc_score(y[held_idx], held)))
            rounds.append(best)
        grid_auc.append((dict(candidate), float(np.mean(aucs)), int(np.mean(rounds))))
        errors.append(float(np.std(aucs, ddof=1) / np.sqrt(len(aucs))) if len(aucs) > 1 else 0.0)
        done += 1
        report("cross-validating the grid", done, total)

    chosen, cv_auc, n_rounds = _simplest_within_one_error(grid_auc, errors, base)
    params = {**base, **chosen}

    oof = np.zeros(len(y), dtype=np.float64)
    for fit_idx, held_idx in splits:
        booster = lgb.train(
            params, lgb.Dataset(x[fit_idx], y[fit_idx], feature_name=names), n_rounds
        )
        oof[held_idx] = booster.predict(x[held_idx], raw_score=True)
        done += 1
        report("out-of-fold scores for calibration", done, total)

    cal_x, cal_y = isotonic_map(oof, y)
    oof_probability = np.interp(oof, cal_x, cal_y)
    threshold = best_f1_threshold(y, oof_probability)

    final = lgb.train(params, lgb.Dataset(x, y, feature_name=names), n_rounds)
    done += 1
    report("fitting the final model", done, total)

    medians = {c: float(np.nanmedian(x[:, i])) for i, c in enumerate(columns)}
    meta: dict[str, Any] = {
        "kind": "purchase_intent",
        "rows": len(y),
        "positives": int(y.sum()),
        "seed": seed,
        "folds": folds,
        "params": {k: v for k, v in params.items() if k != "num_threads"},
        "rounds": n_rounds,
        "cv_auc": round(cv_auc, 6),
        "lightgbm": lgb.__version__,
        **(dict(provenance) if provenance else {}),
    }
    model = IntentModel(
        final,
        columns=columns,
        calibration_x=cal_x,
        calibration_y=cal_y,
        threshold=threshold,
        medians=medians,
        meta=meta,
    )
    return TrainingResult(
        model=model,
        params=dict(chosen),
        rounds=n_rounds,
        cv_auc=cv_auc,
        threshold=threshold,
        oof_probability=oof_probability,
        oof_raw=oof,
        grid_auc=grid_auc,
    )
