"""`polku signals`: train the purchase-intent model and measure it on public data.

    polku signals train --synthetic --out DIR     the shipped default's recipe (no data needed)
    polku signals train --data train.csv --out DIR   on your own UCI-shaped CSV
    polku signals evaluate ../shared/data/uci_online_shoppers_intention [--diginetica DIR]

The commands only parse options, show progress and print; the work is in
`polku.signals.training`, `polku.signals.evaluation` and `polku.signals.early`, imported by
the command that needs it, so `polku --help` does not load LightGBM and scikit-learn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import click

from polku.errors import PolkuError

__all__ = ["signals"]


class _Bar:
    """A click progress bar per training step, as `polku.signals.training.Progress`."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._step = ""
        self._done = 0

    def __call__(self, step: str, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=total, label="Training", file=sys.stderr)
            self._bar.__enter__()
        self._step = step
        self._bar.label = f"Training: {step:<36}"
        self._bar.update(done - self._done)
        self._done = done

    def __enter__(self) -> _Bar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, traceback)
            self._bar = None
            self._done = 0


def _failed(exc: PolkuError) -> click.ClickException:
    return click.ClickException(f"{exc.message} {exc.hint or ''}".strip())


_F = TypeVar("_F", bound=Callable[..., Any])


def _cross_validation(command: _F) -> _F:
    """`--quick` and `--folds`, the same for training and for evaluation."""
    command = click.option(
        "--folds",
        type=click.IntRange(min=2, max=20),
        default=5,
        show_default=True,
        help="Cross-validation folds.",
    )(command)
    return click.option(
        "--quick", is_flag=True, help="Cross-validate 2 parameter sets instead of 12."
    )(command)


@click.group()
def signals() -> None:
    """Buying signals: train and evaluate the purchase-intent model."""


@signals.command("train")
@click.option(
    "--data",
    "data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A CSV in the UCI Online Shoppers shape, with the Revenue label.",
)
@click.option(
    "--synthetic",
    is_flag=True,
    help="Train on the demo shop's simulated shoppers (the shipped default's recipe).",
)
@click.option(
    "--shoppers",
    type=click.IntRange(min=50),
    default=None,
    help="With --synthetic: how many shoppers to simulate (default 4000).",
)
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same model).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("intent-model"),
    show_default=True,
    help="Folder to write model.txt, calibration.json and meta.json into.",
)
@_cross_validation
def train_command(
    data: Path | None,
    synthetic: bool,
    shoppers: int | None,
    seed: int | None,
    out: Path,
    quick: bool,
    folds: int,
) -> None:
    """Train a purchase-intent model and write it to a folder.

    Point Polku at the folder to use it instead of the shipped default
    (whose own recipe is `polku signals train --synthetic`)."""
    from polku.signals.datasets import read_uci
    from polku.signals.synthetic import (
        DEFAULT_SHOPPERS,
        SYNTHETIC_GRID,
        SYNTHETIC_SEED,
        synthetic_rows,
    )
    from polku.signals.training import DEFAULT_GRID, QUICK_GRID, train

    if (data is None) == (not synthetic):
        raise click.UsageError("Give exactly one of --data CSV and --synthetic.")
    if shoppers is not None and not synthetic:
        raise click.UsageError("--shoppers goes with --synthetic.")
    try:
        if synthetic:
            click.echo("Simulating shoppers through the live feature code...", err=True)
            rows = synthetic_rows(
                shoppers or DEFAULT_SHOPPERS, seed=SYNTHETIC_SEED if seed is None else seed
            )
            provenance = {"trained_on": rows.source, "recipe": "polku signals train --synthetic"}
        else:
            assert data is not None
            rows = read_uci(data)
            provenance = {"trained_on": data.name}
        started = time.perf_counter()
        with _Bar() as bar:
            result = train(
                rows.rows,
                rows.labels,
                grid=QUICK_GRID if quick else (SYNTHETIC_GRID if synthetic else DEFAULT_GRID),
                folds=folds,
                seed=468 if seed is None else seed,
                provenance=provenance,
                progress=bar,
            )
        result.model.save(out)
    except PolkuError as exc:
        raise _failed(exc) from exc
    click.echo(
        f"Trained on {len(rows)} rows ({sum(rows.labels)} bought) in "
        f"{time.perf_counter() - started:.0f} s: cross-validated ROC-AUC {result.cv_auc:.3f} "
        f"with {result.params}, {result.rounds} rounds; threshold {result.threshold:.3f}."
    )
    click.echo(f"Wrote {out}/model.txt, calibration.json, meta.json.")


@signals.command("evaluate")
@click.argument("uci", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--diginetica",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Also the event-level evaluation on this DIGINETICA folder.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write ROC, precision-recall, calibration and AUC-by-k plots (PNG) here "
    "(needs matplotlib: pip install 'polku[evaluate]').",
)
@click.option(
    "--limit",
    type=click.IntRange(min=100),
    default=None,
    help="Only the first N rows of each file.",
)
@_cross_validation
@click.option("--seed", type=int, default=468, show_default=True, help="Random seed.")
def evaluate_command(
    uci: Path,
    diginetica: Path | None,
    plots: Path | None,
    limit: int | None,
    quick: bool,
    folds: int,
    seed: int,
) -> None:
    """Fit on UCI/train.csv, report once on UCI/test.csv, next to the published result.

    UCI is the folder of the UCI Online Shoppers train.csv and test.csv
    (e.g. ../shared/data/uci_online_shoppers_intention)."""
    from polku.signals.evaluation import evaluate_uci, format_uci
    from polku.signals.training import DEFAULT_GRID, QUICK_GRID

    grid = QUICK_GRID if quick else DEFAULT_GRID
    if plots is not None:
        try:
            from polku.signals import plots as plotting
        except ImportError as exc:
            raise click.ClickException(
                f"--plots needs matplotlib ({exc}). Install it: pip install 'polku[evaluate]'."
            ) from exc
    try:
        with _Bar() as bar:
            report = evaluate_uci(uci, limit=limit, grid=grid, folds=folds, seed=seed, progress=bar)
        click.echo(format_uci(report))
        early = None
        if diginetica is not None:
            from polku.signals.early import evaluate_diginetica, format_diginetica

            with _Bar() as bar:
                early = evaluate_diginetica(
                    diginetica,
                    grid=grid,
                    folds=folds,
                    seed=seed,
                    transfer=report.training.model,
                    progress=bar,
                )
            click.echo("")
            click.echo(format_diginetica(early))
    except PolkuError as exc:
        raise _failed(exc) from exc
    if plots is not None:
        written = plotting.write_uci_plots(report, plots)
        if early is not None:
            written.append(plotting.write_auc_by_k(early, plots))
        click.echo("")
        click.echo("Plots: " + ", ".join(str(p) for p in written))


@signals.command("score")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model folder (default: the model shipped with Polku).",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="A UCI-shaped CSV (the Revenue column is not needed).",
)
@click.option(
    "--top",
    type=click.IntRange(min=0, max=10),
    default=3,
    show_default=True,
    help="Reasons to print per row (0: the probability only).",
)
@click.option("--fi", "finnish", is_flag=True, help="Reasons in Finnish.")
def score_command(model_dir: Path | None, data: Path, top: int, finnish: bool) -> None:
    """Score each row of a CSV: probability and reasons, one line per row."""
    from polku.signals.datasets import read_uci
    from polku.signals.model import IntentModel

    try:
        model = IntentModel.load(model_dir)
        rows = read_uci(data, labelled=False)
        for index, scored in enumerate(model.score_many(rows.rows, top=top), start=1):
            words = "; ".join(r.fi if finnish else r.en for r in scored.reasons)
            click.echo(f"{index}\t{scored.probability:.3f}\t{words}")
    except PolkuError as exc:
        raise _failed(exc) from exc
