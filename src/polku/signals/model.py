"""The purchase-intent model: a LightGBM booster, a calibration map, and reasons in words.

Why LightGBM: its native *text* model format is read without pickle (a model file is data,
never code), a single-row prediction costs microseconds, and ``pred_contrib`` gives the exact
TreeSHAP contribution of every feature in the same call, which is what the reasons are made of.
The probability comes from a calibration map fitted on held-out folds (isotonic regression of
the booster's raw score), stored as JSON and applied with `numpy.interp`, so serving needs
neither scikit-learn nor anything fitted at start-up.

A model is a folder of three files:

``model.txt``          the LightGBM booster in its text format
``calibration.json``   ``{"method": "isotonic", "x": [raw scores], "y": [probabilities]}``
``meta.json``          format version, encoding version, the feature columns, the decision
                       threshold, per-feature medians (for the reasons' wording), provenance

`IntentModel.load` checks that the three agree (columns, versions) and raises `ModelFileError`
naming the file and what to do, so a wrong file never fails deeper in, mid-pipeline.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from polku.errors import InvalidField, PolkuError
from polku.signals.candidates import UCI_COLUMNS, Reason

__all__ = [
    "DEFAULT_MODEL_DIR",
    "ENCODING_VERSION",
    "FORMAT_VERSION",
    "INTEGER_CODES",
    "MODEL_COLUMNS",
    "IntentModel",
    "ModelFileError",
    "Scored",
    "encode_row",
    "encode_rows",
]

FORMAT_VERSION: Final = 1
"""Version of the folder layout and of meta.json; a model of another version is refused."""

ENCODING_VERSION: Final = 1
"""Version of `encode_row`; bumped whenever a column's encoding changes meaning."""

DEFAULT_MODEL_DIR: Final = Path(__file__).parent / "models" / "default"

INTEGER_CODES: Final = ("OperatingSystems", "Browser", "Region", "TrafficType")
"""UCI's anonymised integer codes: they mean nothing for a live shop, so models leave them out."""

_THREADS: Final = 1
"""Threads per prediction. One: a row is microseconds of work, and OpenMP's thread team
costs more than it saves (10x slower single-row scores on a busy 2-core machine); Polku
scales scoring by running more workers."""

MODEL_COLUMNS: Final = tuple(c for c in UCI_COLUMNS if c not in INTEGER_CODES)
"""The columns a model uses unless told otherwise."""

_MONTHS: Final = {
    name: number
    for number, names in enumerate(
        (
            ("Jan", "January"),
            ("Feb", "February"),
            ("Mar", "March"),
            ("Apr", "April"),
            ("May",),
            ("Jun", "June"),
            ("Jul", "July"),
            ("Aug", "August"),
            ("Sep", "Sept", "September"),
            ("Oct", "October"),
            ("Nov", "November"),
            ("Dec", "December"),
        ),
        start=1,
    )
    for name in names
}
_VISITOR_TYPES: Final = {"New_Visitor": 0.0, "Returning_Visitor": 1.0, "Other": 2.0}
_BOOLEAN_TEXT: Final = {"TRUE": True, "FALSE": False, "true": True, "false": False}


def _number(column: str, value: object) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if value is None:
        return math.nan  # LightGBM's missing value
    raise InvalidField(
        f"Feature {column} is {value!r}, not a number.",
        field=column,
        hint="Give counts and seconds as numbers and rates in 0..1 (see UCI_COLUMNS).",
    )


def _month(column: str, value: object) -> float:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12:
        return float(value)
    number = _MONTHS.get(value) if isinstance(value, str) else None
    if number is None:
        raise InvalidField(
            f"Feature Month is {value!r}, not a month name such as 'Feb' or 'June'.",
            field=column,
            hint="Give the month as in the UCI data: 'Jan'..'Dec' ('June' spelt out).",
        )
    return float(number)


def _visitor(column: str, value: object) -> float:
    code = _VISITOR_TYPES.get(value) if isinstance(value, str) else None
    if code is None:
        raise InvalidField(
            f"Feature VisitorType is {value!r}.",
            field=column,
            hint="Give one of 'Returning_Visitor', 'New_Visitor', 'Other'.",
        )
    return code


def _weekend(column: str, value: object) -> float:
    if isinstance(value, str):
        value = _BOOLEAN_TEXT.get(value, value)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    raise InvalidField(
        f"Feature Weekend is {value!r}, not a bool.", field=column, hint="Give true or false."
    )


_ENCODERS: Final[dict[str, Callable[[str, object], float]]] = {
    "Month": _month,
    "VisitorType": _visitor,
    "Weekend": _weekend,
}


def encode_row(row: Mapping[str, object], columns: Sequence[str] = MODEL_COLUMNS) -> list[float]:
    """One feature row in the raw UCI value shapes as the model's numbers, in `columns` order.

    The one encoding used by training, evaluation and serving: counts, seconds and rates as
    they are; ``Month`` as its number (Jan = 1); ``VisitorType`` New 0 / Returning 1 / Other 2;
    ``Weekend`` 0/1; a missing or None value is NaN, which LightGBM treats as missing.
    A value of the wrong shape is an `InvalidField` naming the column.
    """
    out = []
    for column, encoder in _encoders(tuple(columns)):
        value = row.get(column)
        if value is None:
            out.append(math.nan)
        elif encoder is _number and (type(value) is float or type(value) is int):
            out.append(float(value))  # the common case, as `_number` would give it
        else:
            out.append(encoder(column, value))
    return out


@functools.lru_cache(maxsize=16)
def _encoders(
    columns: tuple[str, ...],
) -> tuple[tuple[str, Callable[[str, object], float]], ...]:
    return tuple((column, _ENCODERS.get(column, _number)) for column in columns)


def encode_rows(
    rows: Iterable[Mapping[str, object]], columns: Sequence[str] = MODEL_COLUMNS
) -> npt.NDArray[np.float64]:
    """Many rows at once, as a float64 matrix (rows x columns)."""
    data = [encode_row(row, columns) for row in rows]
    return np.asarray(data, dtype=np.float64).reshape(len(data), len(columns))


class ModelFileError(PolkuError):
    """A model folder whose files are missing, unreadable or do not fit this Polku."""

    code = "model_file_invalid"


@dataclass(frozen=True, slots=True)
class Scored:
    """A session's calibrated purchase probability and the reasons that pushed it up."""

    probability: float  # calibrated: of sessions scored like this, this share bought
    reasons: tuple[Reason, ...]  # strongest first; only features that raised the score
    raw: float  # the booster's log-odds before calibration


# --- reasons in words ---------------------------------------------------------------------

# A reason is shown only when the feature raised the score (a positive SHAP value) and its
# value reads as a buying signal to a salesperson: many pages or a long time (not few or
# short), low exit and bounce rates, a high page value, a gift-giving day near. A feature that
# raised the score by being *absent* (no information pages seen) is no reason to call anyone.
# Each wording gets the value and whether it is above the training median; it returns
# (code, English, Finnish), or None when the value does not make a reason.
_Words = Callable[[float, bool], tuple[str, str, str] | None]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _pages(code: str, en_one: str, en_many: str, fi: str) -> _Words:
    def words(value: float, high: bool) -> tuple[str, str, str] | None:
        n = int(value)
        if n < 1 or not high:
            return None
        return (f"{code}_pages", f"Viewed {n} {en_one if n == 1 else en_many}", f"{fi} {n}")

    return words


def _time_on(code: str, en: str, fi: str) -> _Words:
    def words(value: float, high: bool) -> tuple[str, str, str] | None:
        if value < 1 or not high:
            return None
        spent = _minutes(value)
        return (f"{code}_time", f"Spent {spent} on {en}", f"Aikaa {fi} {spent}")

    return words


def _rate(code: str, en: str, fi: str) -> _Words:
    def words(value: float, high: bool) -> tuple[str, str, str] | None:
        if high:
            return None
        share = f"{value * 100:.0f} %"
        return (
            f"low_{code}",
            f"Low {en} of the pages seen ({share})",
            f"Katsotuilla sivuilla matala {fi} ({share})",
        )

    return words


def _page_value(value: float, high: bool) -> tuple[str, str, str] | None:
    if value <= 0 or not high:
        return None
    euros = f"{value:.0f} €"
    return (
        "high_page_value",
        f"High page value of the pages seen ({euros})",
        f"Katsotuilla sivuilla korkea sivuarvo ({euros})",
    )


def _special_day(value: float, high: bool) -> tuple[str, str, str] | None:
    if value <= 0:
        return None
    return (
        "near_special_day",
        "A gift-giving day is near (Valentine's, Mother's Day, Christmas...)",
        "Lahjapäivä lähestyy (ystävänpäivä, äitienpäivä, joulu...)",
    )


_MONTH_NAMES: Final = (
    ("January", "tammikuussa"),
    ("February", "helmikuussa"),
    ("March", "maaliskuussa"),
    ("April", "huhtikuussa"),
    ("May", "toukokuussa"),
    ("June", "kesäkuussa"),
    ("July", "heinäkuussa"),
    ("August", "elokuussa"),
    ("September", "syyskuussa"),
    ("October", "lokakuussa"),
    ("November", "marraskuussa"),
    ("December", "joulukuussa"),
)


def _month_words(value: float, high: bool) -> tuple[str, str, str] | None:
    index = int(value) - 1
    if not 0 <= index < 12:
        return None
    en, fi = _MONTH_NAMES[index]
    return ("buying_season", f"Visit in {en}, when many buy", f"Käynti {fi}, jolloin moni ostaa")


def _visitor_words(value: float, high: bool) -> tuple[str, str, str] | None:
    if value == 1.0:
        return ("returning_visitor", "Returning visitor", "Palaava kävijä")
    if value == 0.0:
        return ("new_visitor", "New visitor", "Uusi kävijä")
    return None


def _weekend_words(value: float, high: bool) -> tuple[str, str, str] | None:
    if value:
        return ("weekend_visit", "Visit at the weekend", "Käynti viikonloppuna")
    return ("weekday_visit", "Visit on a weekday", "Käynti arkena")


def _code_words(column: str) -> _Words:
    def words(value: float, high: bool) -> tuple[str, str, str] | None:
        return None  # an anonymised code means nothing to a salesperson

    return words


_WORDS: Final[dict[str, _Words]] = {
    "Administrative": _pages(
        "account", "account or checkout page", "account and checkout pages",
        "Katsottuja tili- ja kassasivuja",
    ),
    "Administrative_Duration": _time_on(
        "account", "account and checkout pages", "tili- ja kassasivuilla"
    ),
    "Informational": _pages(
        "information", "information page", "information pages", "Katsottuja infosivuja"
    ),
    "Informational_Duration": _time_on("information", "information pages", "infosivuilla"),
    "ProductRelated": _pages(
        "product", "product page", "product pages", "Katsottuja tuotesivuja"
    ),
    "ProductRelated_Duration": _time_on("product", "product pages", "tuotesivuilla"),
    "BounceRates": _rate("bounce_rate", "bounce rate", "välitön poistumisprosentti"),
    "ExitRates": _rate("exit_rate", "exit rate", "poistumisprosentti"),
    "PageValues": _page_value,
    "SpecialDay": _special_day,
    "Month": _month_words,
    "VisitorType": _visitor_words,
    "Weekend": _weekend_words,
    **{column: _code_words(column) for column in INTEGER_CODES},
}  # fmt: skip


# --- the model ----------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(
            f"The model file {path} is missing.",
            hint="A model folder holds model.txt, calibration.json and meta.json, as written "
            "by `polku signals train`; train one again or point to the shipped default.",
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"The model file {path} cannot be read as JSON: {exc}.",
            hint="Train the model again with `polku signals train`.",
        ) from exc
    if not isinstance(data, dict):
        raise ModelFileError(
            f"The model file {path} holds {type(data).__name__}, not a JSON object.",
            hint="Train the model again with `polku signals train`.",
        )
    return data


class IntentModel:
    """A trained purchase-intent model, ready to score live feature rows."""

    def __init__(
        self,
        booster: lgb.Booster,
        *,
        columns: Sequence[str],
        calibration_x: Sequence[float],
        calibration_y: Sequence[float],
        threshold: float,
        medians: Mapping[str, float],
        meta: Mapping[str, Any],
        path: Path | None = None,
    ) -> None:
        self.booster = booster
        self.columns: tuple[str, ...] = tuple(columns)
        self.threshold = float(threshold)
        self.meta = dict(meta)
        self.path = path
        self._cal_x = [float(x) for x in calibration_x]
        self._cal_y = [float(y) for y in calibration_y]
        self._cal_x_np = np.asarray(self._cal_x, dtype=np.float64)
        self._cal_y_np = np.asarray(self._cal_y, dtype=np.float64)
        self._medians = [float(medians.get(c, 0.0)) for c in self.columns]
        self._words = [_WORDS[c] for c in self.columns]

    # -- files ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str | None = None) -> IntentModel:
        """The model in folder `path` (None: the default model shipped with Polku).

        Raises `ModelFileError` naming the file and what to do when a file is missing or the
        files disagree with each other or with this Polku (columns, versions)."""
        folder = DEFAULT_MODEL_DIR if path is None else Path(path)
        meta_path = folder / "meta.json"
        meta = _read_json(meta_path)
        retrain = "Train it again with this Polku: `polku signals train` (see docs/signals.md)."
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelFileError(
                f"The model {meta_path} has format version {version!r}; this Polku reads "
                f"version {FORMAT_VERSION}.",
                hint=retrain,
            )
        encoding = meta.get("encoding_version")
        if encoding != ENCODING_VERSION:
            raise ModelFileError(
                f"The model {meta_path} was trained with feature encoding {encoding!r}; this "
                f"Polku encodes features as version {ENCODING_VERSION}.",
                hint=retrain,
            )
        columns = meta.get("columns")
        if (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(c, str) for c in columns)
        ):
            raise ModelFileError(f"The model {meta_path} lists no feature columns.", hint=retrain)
        unknown = [c for c in columns if c not in UCI_COLUMNS]
        if unknown:
            raise ModelFileError(
                f"The model {meta_path} uses the column(s) {', '.join(unknown)}, which live "
                "feature rows do not have.",
                hint=f"A model may use only these columns: {', '.join(UCI_COLUMNS)}. {retrain}",
            )
        model_path = folder / "model.txt"
        if not model_path.is_file():
            raise ModelFileError(f"The model file {model_path} is missing.", hint=retrain)
        try:
            booster = lgb.Booster(model_file=str(model_path))
        except lgb.basic.LightGBMError as exc:
            raise ModelFileError(
                f"The model file {model_path} is not a LightGBM text model: {exc}.", hint=retrain
            ) from exc
        features = booster.feature_name()
        if features != columns:
            extra = [c for c in features if c not in columns]
            missing = [c for c in columns if c not in features]
            detail = "; ".join(
                part
                for part in (
                    f"only in model.txt: {', '.join(extra)}" if extra else "",
                    f"only in meta.json: {', '.join(missing)}" if missing else "",
                    "same columns in another order" if not extra and not missing else "",
                )
                if part
            )
            raise ModelFileError(
                f"The features of {model_path} do not match the columns of {meta_path} ({detail}).",
                hint="The files of a model folder must come from one training run. " + retrain,
            )
        cal_path = folder / "calibration.json"
        calibration = _read_json(cal_path)
        xs, ys = calibration.get("x"), calibration.get("y")
        if (
            calibration.get("method") != "isotonic"
            or not isinstance(xs, list)
            or not isinstance(ys, list)
            or len(xs) != len(ys)
            or len(xs) < 2
            or not all(isinstance(v, int | float) for v in (*xs, *ys))
            or any(b < a for a, b in itertools.pairwise(xs))
            or any(b < a for a, b in itertools.pairwise(ys))
        ):
            raise ModelFileError(
                f"The calibration {cal_path} is not an isotonic map (method 'isotonic', "
                "increasing 'x' and 'y' of one length, at least 2 points).",
                hint=retrain,
            )
        return cls(
            booster,
            columns=columns,
            calibration_x=xs,
            calibration_y=ys,
            threshold=float(meta.get("threshold", 0.5)),
            medians=meta.get("medians", {}),
            meta=meta,
            path=folder,
        )

    def save(self, folder: Path | str) -> Path:
        """Write the three files into `folder` (created if needed); returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "model.txt"))
        calibration = {"method": "isotonic", "x": self._cal_x, "y": self._cal_y}
        (folder / "calibration.json").write_text(
            json.dumps(calibration, indent=1) + "\n", encoding="utf-8"
        )
        meta = {
            **self.meta,
            "format_version": FORMAT_VERSION,
            "encoding_version": ENCODING_VERSION,
            "columns": list(self.columns),
            "threshold": self.threshold,
            "medians": dict(zip(self.columns, self._medians, strict=True)),
        }
        (folder / "meta.json").write_text(
            json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        return folder

    # -- scoring ----------------------------------------------------------------------------

    def calibrate(self, raw: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Raw booster scores (log-odds) as calibrated probabilities."""
        return np.interp(np.asarray(raw, dtype=np.float64), self._cal_x_np, self._cal_y_np)

    def _calibrate_one(self, raw: float) -> float:
        xs, ys = self._cal_x, self._cal_y
        i = bisect.bisect_right(xs, raw)
        if i == 0:
            return ys[0]
        if i == len(xs):
            return ys[-1]
        x0, x1 = xs[i - 1], xs[i]
        if x1 == x0:
            return ys[i]
        return ys[i - 1] + (ys[i] - ys[i - 1]) * (raw - x0) / (x1 - x0)

    def _reasons(
        self, values: Sequence[float], contrib: Sequence[float], top: int
    ) -> tuple[Reason, ...]:
        """The `top` readable reasons among the features that raised the score, strongest
        first; a reason's weight is its share of all the features' absolute SHAP values."""
        total = math.fsum(abs(c) for c in contrib) or 1.0
        reasons: list[Reason] = []
        for i in sorted(range(len(contrib)), key=lambda i: -contrib[i]):
            if len(reasons) == top or contrib[i] <= 0.0:
                break
            value = values[i]
            if math.isnan(value):
                continue
            words = self._words[i](value, value > self._medians[i])
            if words is not None:
                reasons.append(Reason(*words, weight=round(contrib[i] / total, 4)))
        return tuple(reasons)

    def score(self, row: Mapping[str, object], *, top: int = 3) -> Scored:
        """One feature row's calibrated probability and its `top` reasons.

        One booster call gives both: the SHAP contributions (``pred_contrib``) sum to the raw
        score. When most rows need no reasons, `probability` is about three times cheaper."""
        values = encode_row(row, self.columns)
        matrix = np.array([values], dtype=np.float64)
        out = self.booster.predict(matrix, pred_contrib=True, num_threads=_THREADS)
        contrib = out[0].tolist()  # one SHAP value per column, then the bias
        raw = math.fsum(contrib)
        return Scored(self._calibrate_one(raw), self._reasons(values, contrib[:-1], top), raw)

    def probability(self, row: Mapping[str, object]) -> float:
        """One feature row's calibrated probability, without reasons."""
        matrix = np.array([encode_row(row, self.columns)], dtype=np.float64)
        raw = self.booster.predict(matrix, raw_score=True, num_threads=_THREADS)
        return self._calibrate_one(float(raw[0]))

    def score_many(self, rows: Iterable[Mapping[str, object]], *, top: int = 3) -> list[Scored]:
        """Many rows in one booster call (cheaper per row than `score`)."""
        matrix = encode_rows(rows, self.columns)
        if len(matrix) == 0:
            return []
        out = np.asarray(self.booster.predict(matrix, pred_contrib=True, num_threads=_THREADS))
        raws = out.sum(axis=1)
        probabilities = self.calibrate(raws)
        return [
            Scored(
                float(p),
                self._reasons(values.tolist(), contrib[:-1].tolist(), top),
                float(r),
            )
            for values, contrib, p, r in zip(matrix, out, probabilities, raws, strict=True)
        ]

    def probabilities(self, rows: Iterable[Mapping[str, object]]) -> npt.NDArray[np.float64]:
        """Calibrated probabilities only, for evaluation (no reasons)."""
        matrix = encode_rows(rows, self.columns)
        if len(matrix) == 0:
            return np.zeros(0)
        raw = self.booster.predict(matrix, raw_score=True, num_threads=_THREADS)
        return self.calibrate(raw)
