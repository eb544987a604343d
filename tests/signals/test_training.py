"""`polku signals train` and `evaluate` through the CLI, on small real and simulated data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightgbm
import pytest
from click.testing import CliRunner

from polku.cli import main
from polku.signals.candidates import UCI_COLUMNS
from polku.signals.model import DEFAULT_MODEL_DIR, IntentModel

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
UCI = DATA / "uci_online_shoppers_intention"

needs_uci = pytest.mark.skipif(
    not (UCI / "train.csv").is_file(), reason=f"the UCI data set is not at {UCI}"
)


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, ["signals", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _head(source: Path, target: Path, lines: int) -> Path:
    with source.open(encoding="utf-8") as handle:
        target.write_text("".join(next(handle) for _ in range(lines + 1)), encoding="utf-8")
    return target


@needs_uci
def test_train_on_a_uci_shaped_csv_writes_a_model_that_loads(tmp_path: Path) -> None:
    csv = _head(UCI / "train.csv", tmp_path / "mine.csv", 800)
    out = tmp_path / "model"
    printed = _run("train", "--data", str(csv), "--out", str(out), "--quick", "--folds", "3")
    assert "Trained on 800 rows" in printed and "cross-validated ROC-AUC" in printed
    model = IntentModel.load(out)
    assert model.meta["trained_on"] == "mine.csv" and model.meta["rows"] == 800
    scored = model.score_many(
        [{"PageValues": 40.0, "ProductRelated": 30, "ExitRates": 0.01}, {"ExitRates": 1.0}]
    )
    assert scored[0].probability > scored[1].probability


@needs_uci
def test_evaluate_prints_the_metrics_table_next_to_the_published_result(tmp_path: Path) -> None:
    printed = _run("evaluate", str(UCI), "--limit", "800", "--quick", "--folds", "3")
    assert "ROC-AUC" in printed and "PR-AUC" in printed and "F1" in printed
    assert "Published XGBoost (Tanvir et al. 2023)          0.937    0.754" in printed
    line = next(x for x in printed.splitlines() if x.startswith("Polku LightGBM, test.csv"))
    roc_auc, pr_auc, f1, accuracy = (float(v) for v in line.split()[-4:])
    assert 0.8 < roc_auc <= 1.0 and 0.3 < pr_auc <= 1.0 and 0.0 < f1 <= 1.0
    assert 0.8 < accuracy <= 1.0


def test_synthetic_training_is_reproducible(tmp_path: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        _run(
            "train",
            "--synthetic",
            "--shoppers",
            "300",
            "--out",
            str(out),
            "--quick",
            "--folds",
            "3",
        )
    for name in ("model.txt", "calibration.json", "meta.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    model = IntentModel.load(outs[0])
    assert model.meta["recipe"] == "polku signals train --synthetic"


def test_train_needs_exactly_one_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["signals", "train", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Give exactly one of --data CSV and --synthetic" in result.output


def test_a_csv_without_the_uci_columns_is_refused_with_the_column(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("PageValues,Revenue\n1,TRUE\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["signals", "train", "--data", str(csv)])
    assert result.exit_code == 1
    assert f"{csv} has no column Administrative" in result.output


DIGINETICA = DATA / "diginetica_cikm2016"


@needs_uci
@pytest.mark.skipif(
    not (DIGINETICA / "sample_train-item-views.csv").is_file(),
    reason=f"the DIGINETICA sample is not at {DIGINETICA}",
)
def test_evaluate_on_diginetica_reports_auc_by_k_and_draws_the_plots(tmp_path: Path) -> None:
    printed = _run(
        "evaluate", str(UCI), "--limit", "800", "--quick", "--folds", "3",
        "--diginetica", str(DIGINETICA), "--plots", str(tmp_path),
    )  # fmt: skip
    assert "935 held-out sessions" in printed
    table = {
        line.split()[0]: line.split()[1:]
        for line in printed.splitlines()
        if line.split()[:1] in (["1"], ["2"], ["3"], ["5"], ["all"])
    }
    assert set(table) == {"1", "2", "3", "5", "all"}
    assert int(table["1"][0]) == int(table["all"][0]) > int(table["5"][0])
    assert all(0.0 <= float(auc) <= 1.0 for _, auc in table.values())
    assert "median lead time from the first signal to the purchase" in printed
    for name in ("roc", "pr", "calibration", "auc-by-k"):
        png = tmp_path / f"signals-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_the_polku_command_does_not_load_the_ml_libraries() -> None:
    code = (
        "import sys, polku.cli; "
        "heavy = [m for m in ('lightgbm', 'sklearn', 'numpy', 'matplotlib') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_score_prints_probability_and_reasons_per_row(tmp_path: Path) -> None:
    csv = tmp_path / "sessions.csv"
    header = ",".join(UCI_COLUMNS)
    keen = "4,180,0,0,24,1500,0,0.01,48,0,Nov,1,1,1,1,Returning_Visitor,FALSE"
    bounce = "0,0,0,0,1,0,1,1,0,0,Feb,1,1,1,1,New_Visitor,FALSE"
    csv.write_text(f"{header}\n{keen}\n{bounce}\n", encoding="utf-8")
    lines = _run("score", "--data", str(csv), "--fi").splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2"]
    keen_p, bounce_p = (float(line.split("\t")[1]) for line in lines)
    assert keen_p > bounce_p
    assert "Katsotuilla sivuilla" in lines[0] or "Katsottuja" in lines[0]


def test_the_shipped_default_is_what_the_recipe_trains(tmp_path: Path) -> None:
    shipped = IntentModel.load()
    if shipped.meta.get("lightgbm") != lightgbm.__version__:
        pytest.skip(f"the default was trained with LightGBM {shipped.meta.get('lightgbm')}")
    _run("train", "--synthetic", "--out", str(tmp_path))
    for name in ("model.txt", "calibration.json", "meta.json"):
        assert (tmp_path / name).read_bytes() == (DEFAULT_MODEL_DIR / name).read_bytes(), (
            f"{name} differs from what `polku signals train --synthetic` gives now (the demo "
            "simulator or the features changed?): run it with "
            "--out src/polku/signals/models/default and commit the three files"
        )
