"""PNG plots of an evaluation: ROC, precision-recall, calibration, and AUC after k views.

Needs matplotlib (``pip install 'polku[evaluate]'``); nothing else in Polku imports it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from polku.signals.early import DigineticaReport
from polku.signals.evaluation import PUBLISHED, UciReport

__all__ = ["write_auc_by_k", "write_uci_plots"]


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    # No timestamp in the file, so the same figures give the same bytes.
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)
    return path


def write_uci_plots(report: UciReport, folder: Path) -> list[Path]:
    """signals-roc.png, signals-pr.png and signals-calibration.png of the UCI test set."""
    y, p = report.labels, report.probability
    written = []

    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    fpr, tpr, _ = roc_curve(y, p)
    axes.plot(fpr, tpr, label=f"Polku LightGBM (AUC {report.test.roc_auc:.3f})")
    axes.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    axes.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=f"ROC, UCI test.csv (published XGBoost {PUBLISHED['roc_auc']:.3f})",
    )
    axes.legend(loc="lower right")
    written.append(_save(figure, folder / "signals-roc.png"))

    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    precision, recall, _ = precision_recall_curve(y, p)
    axes.plot(recall, precision, label=f"Polku LightGBM (AP {report.test.pr_auc:.3f})")
    axes.axhline(y.mean(), linestyle=":", color="grey", label=f"base rate {y.mean():.3f}")
    axes.set(
        xlabel="recall",
        ylabel="precision",
        title=f"Precision-recall, UCI test.csv (published {PUBLISHED['pr_auc']:.3f})",
    )
    axes.legend(loc="lower left")
    written.append(_save(figure, folder / "signals-pr.png"))

    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    axes.plot(predicted, observed, "o-", label="Polku (isotonic, fitted out of fold)")
    axes.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    axes.set(
        xlabel="predicted probability",
        ylabel="share that bought",
        title="Calibration, UCI test.csv (10 quantile bins)",
    )
    axes.legend(loc="upper left")
    written.append(_save(figure, folder / "signals-calibration.png"))
    return written


def write_auc_by_k(report: DigineticaReport, folder: Path) -> Path:
    """signals-auc-by-k.png: held-out ROC-AUC after the first k views (DIGINETICA)."""
    keys = [k for k in report.sessions_by_k if k in report.auc_by_k]
    figure, axes = plt.subplots(figsize=(4.8, 3.6))
    axes.plot(range(len(keys)), [report.auc_by_k[k] for k in keys], "o-")
    axes.set_xticks(range(len(keys)), [f"{k}\n({report.sessions_by_k[k]})" for k in keys])
    axes.axhline(0.5, linestyle=":", color="grey")
    axes.set(
        xlabel="views seen (held-out sessions)",
        ylabel="ROC-AUC",
        ylim=(0.4, 1.0),
        title="DIGINETICA: AUC after the first k views",
    )
    axes.grid(alpha=0.3, axis="y")
    return _save(figure, folder / "signals-auc-by-k.png")
