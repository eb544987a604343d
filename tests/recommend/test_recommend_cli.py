"""`polku recommend train` and `polku recommend evaluate` through the command line."""

from __future__ import annotations

import csv
import gzip
import random
import uuid
from pathlib import Path

from click.testing import CliRunner

from conftest import Polku
from polku.cli import main

MODELS = (
    "popularity (baseline)",
    "popularity, time-decayed",
    "popularity per country",
    "item-item co-occurrence (BM25)",
    "ALS (implicit)",
    "BPR (implicit)",
    "content TF-IDF",
    "session next item",
)


def _retail(folder: Path, seed: int = 3) -> None:
    """A small shop in the UCI file's shape: two kinds of customer, each keeping to its own
    products before and after the cut, with cancellations and a postage line."""
    rng = random.Random(seed)
    header = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice"]
    header += ["CustomerID", "Country"]
    rows: list[list[str]] = []
    for customer in range(60):
        group = customer % 2
        codes = [f"{10000 + group * 100 + i}" for i in range(12)]
        for month, day in ((3, 5), (5, 9), (7, 14), (10, 2)):
            invoice = f"{500000 + len(rows)}"
            for code in rng.sample(codes, 4):
                name = ("RED HEART " if group else "BLUE STAR ") + code
                at = f"2011-{month:02d}-{day:02d} 10:00:00"
                rows.append([invoice, code, name, "2", at, "1.5", f"{12000 + customer}.0", "UK"])
            rows.append([invoice, "POST", "POSTAGE", "1", at, "18", f"{12000 + customer}.0", "UK"])
        rows.append(["C" + invoice, codes[0], "", "-1", at, "1.5", f"{12000 + customer}.0", "UK"])
    with gzip.open(folder / "online_retail.csv.gz", "wt", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_evaluate_prints_every_model_next_to_the_baseline(tmp_path: Path) -> None:
    _retail(tmp_path)
    result = CliRunner().invoke(main, ["recommend", "evaluate", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0][2:] for line in table[1:]] == ["model", *MODELS][1:]
    als = next(line for line in table if line.startswith("| ALS"))
    baseline = next(line for line in table if line.startswith("| popularity (baseline)"))
    # Two kinds of customer: personal models find each one's products, popularity cannot.
    assert float(als.split(" | ")[2]) > float(baseline.split(" | ")[2])
    strict = CliRunner().invoke(
        main, ["recommend", "evaluate", "--data", str(tmp_path), "--new-only"]
    )
    assert strict.exit_code == 0, strict.output


def test_evaluate_says_where_the_data_should_be(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["recommend", "evaluate", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "online_retail.csv.gz" in result.output and "--data" in result.output
    bad = CliRunner().invoke(
        main, ["recommend", "evaluate", "--data", str(tmp_path), "--cut", "soon"]
    )
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output


def test_train_stores_a_new_version_that_serving_then_uses(polku: Polku, tmp_path: Path) -> None:
    settings = polku.runtime.settings
    where = (
        ["--data-dir", str(settings.data_dir)]
        if settings.is_sqlite
        else ["--database", settings.database_url.reveal()]
    )
    empty = CliRunner().invoke(main, ["recommend", "train", *where])
    assert empty.exit_code == 0, empty.output
    assert "nothing to train on" in empty.output
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": f"u{n}",
            "messageId": uuid.uuid4().hex,
            "properties": {"product_id": f"p{n % 3}"},
        }
        for n in range(12)
    ]
    assert polku.send("/v1/batch", {"batch": batch}).status_code == 200
    polku.settle()
    result = CliRunner().invoke(main, ["recommend", "train", *where])
    assert result.exit_code == 0, result.output
    assert "Trained version 1 on 12 interactions of 12 people and 3 items" in result.output
    status = polku.client.get("/v1/recommendations/status", headers=polku.admin).json()
    assert status["version"] == 1 and status["summary"]["interactions"] == 12
