"""The shipped purchase-intent model: loading, scoring, reasons, and refusing wrong files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polku.errors import InvalidField, PolkuError
from polku.signals.candidates import UCI_COLUMNS
from polku.signals.model import (
    DEFAULT_MODEL_DIR,
    INTEGER_CODES,
    IntentModel,
    ModelFileError,
    encode_row,
)

BOUNCER: dict[str, object] = {
    "Administrative": 0,
    "Administrative_Duration": 0.0,
    "Informational": 0,
    "Informational_Duration": 0.0,
    "ProductRelated": 1,
    "ProductRelated_Duration": 0.0,
    "BounceRates": 1.0,
    "ExitRates": 1.0,
    "PageValues": 0.0,
    "SpecialDay": 0.0,
    "Month": "Feb",
    "OperatingSystems": 1,
    "Browser": 1,
    "Region": 1,
    "TrafficType": 1,
    "VisitorType": "New_Visitor",
    "Weekend": False,
}
BUYER: dict[str, object] = {
    **BOUNCER,
    "Administrative": 4,
    "Administrative_Duration": 180.0,
    "ProductRelated": 24,
    "ProductRelated_Duration": 1500.0,
    "BounceRates": 0.0,
    "ExitRates": 0.01,
    "PageValues": 48.0,
    "Month": "Nov",
    "VisitorType": "Returning_Visitor",
}


@pytest.fixture(scope="module")
def model() -> IntentModel:
    return IntentModel.load()


def test_default_model_uses_live_columns_only(model: IntentModel) -> None:
    assert model.path == DEFAULT_MODEL_DIR
    assert set(model.columns) <= set(UCI_COLUMNS)
    assert not set(model.columns) & set(INTEGER_CODES)
    assert 0.0 < model.threshold < 1.0
    assert model.meta["recipe"] == "polku signals train --synthetic"


def test_a_likely_buyer_scores_above_a_bouncer_with_reasons_in_both_languages(
    model: IntentModel,
) -> None:
    buyer, bouncer = model.score(BUYER), model.score(BOUNCER)
    assert 0.0 <= bouncer.probability < buyer.probability <= 1.0
    assert buyer.probability >= model.threshold > bouncer.probability
    assert buyer.reasons
    for reason in buyer.reasons:
        assert reason.code and reason.en and reason.fi and reason.en != reason.fi
        assert 0.0 < reason.weight <= 1.0
    weights = [r.weight for r in buyer.reasons]
    assert weights == sorted(weights, reverse=True)
    assert model.probability(BUYER) == pytest.approx(buyer.probability)


def test_reasons_quote_the_value_a_salesperson_can_check(model: IntentModel) -> None:
    reasons = {r.code: r for r in model.score(BUYER, top=13).reasons}
    assert reasons, "the buyer's score was raised by something readable"
    texts = " ".join(r.en for r in reasons.values())
    assert any(v in texts for v in ("48 €", "24 product pages", "25 min", "4 account"))
    if "high_page_value" in reasons:
        assert reasons["high_page_value"].en == "High page value of the pages seen (48 €)"
        assert reasons["high_page_value"].fi == "Katsotuilla sivuilla korkea sivuarvo (48 €)"


def test_score_many_agrees_with_score(model: IntentModel) -> None:
    many = model.score_many([BUYER, BOUNCER])
    assert [s.probability for s in many] == pytest.approx(
        [model.score(BUYER).probability, model.score(BOUNCER).probability]
    )
    assert many[0].reasons == model.score(BUYER).reasons
    assert model.score_many([]) == []


def test_encoding_reads_the_raw_uci_shapes() -> None:
    columns = ("Month", "VisitorType", "Weekend", "PageValues")
    june = {"Month": "June", "VisitorType": "Returning_Visitor", "Weekend": True, "PageValues": 3}
    assert encode_row(june, columns) == [6.0, 1.0, 1.0, 3.0]
    text = {"Month": "Dec", "VisitorType": "Other", "Weekend": "FALSE", "PageValues": None}
    encoded = encode_row(text, columns)
    assert encoded[:3] == [12.0, 2.0, 0.0] and encoded[3] != encoded[3]  # NaN: missing


def test_a_value_of_the_wrong_shape_names_the_column(model: IntentModel) -> None:
    with pytest.raises(InvalidField) as caught:
        model.score({**BUYER, "Month": "Smarch"})
    assert caught.value.field == "Month"
    with pytest.raises(InvalidField, match="PageValues"):
        model.score({**BUYER, "PageValues": "48,00"})


def _copy_default(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def _edit_meta(folder: Path, **changes: object) -> None:
    path = folder / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_a_copy_of_the_default_loads_and_scores_the_same(
    tmp_path: Path, model: IntentModel
) -> None:
    copy = IntentModel.load(_copy_default(tmp_path))
    assert copy.score(BUYER) == model.score(BUYER)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("extra column", "only in meta.json: TrafficType"),
        ("missing column", "only in model.txt: Weekend"),
        ("unknown column", "Basket_Size"),
        ("format version", "format version 99"),
        ("encoding version", "feature encoding 7"),
    ],
)
def test_a_mismatched_model_file_is_refused_clearly(
    tmp_path: Path, change: str, words: str
) -> None:
    folder = _copy_default(tmp_path)
    columns = json.loads((folder / "meta.json").read_text())["columns"]
    if change == "extra column":
        _edit_meta(folder, columns=[*columns, "TrafficType"])
    elif change == "missing column":
        _edit_meta(folder, columns=[c for c in columns if c != "Weekend"])
    elif change == "unknown column":
        _edit_meta(folder, columns=[*columns, "Basket_Size"])
    elif change == "format version":
        _edit_meta(folder, format_version=99)
    else:
        _edit_meta(folder, encoding_version=7)
    with pytest.raises(ModelFileError) as caught:
        IntentModel.load(folder)
    error = caught.value
    assert isinstance(error, PolkuError) and error.code == "model_file_invalid"
    assert words in error.message
    assert str(folder) in error.message
    assert error.hint is not None and "polku signals train" in error.hint


@pytest.mark.parametrize("name", ["model.txt", "calibration.json", "meta.json"])
def test_a_missing_or_broken_file_is_named(tmp_path: Path, name: str) -> None:
    folder = _copy_default(tmp_path)
    (folder / name).unlink()
    with pytest.raises(ModelFileError, match=name):
        IntentModel.load(folder)
    (folder / name).write_text("not a model\n")
    with pytest.raises(ModelFileError, match=name):
        IntentModel.load(folder)
