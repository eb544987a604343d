"""Readers for the public data sets the buying-signal model is measured on.

Two shapes, both read with the standard library only:

* the UCI *Online Shoppers Purchasing Intention* CSVs (one row per session, aggregated page
  counts and Google-Analytics rates, label ``Revenue``): `read_uci` gives each row in the raw
  value shapes of `polku.signals.candidates.UCI_COLUMNS` (numbers as numbers, ``Weekend`` a
  bool, ``Month`` and ``VisitorType`` strings), exactly what a live feature row looks like, so
  training, evaluation and serving share one encoding (`polku.signals.model.encode_row`);
* the DIGINETICA / CIKM Cup 2016 item views and purchases (event level): `read_diginetica`
  gives each session's views in time order and when (if ever) it bought.

The project never ships these files; they are read from a folder the user names
(``../shared/data/...`` in the tests and benchmarks).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from polku.errors import BadRequest
from polku.signals.candidates import UCI_COLUMNS

__all__ = [
    "LABEL",
    "DatasetError",
    "DigineticaSession",
    "LabelledRows",
    "read_diginetica",
    "read_uci",
]

LABEL: Final = "Revenue"
"""The UCI label column: did the session end in a purchase."""

_INTEGER_COLUMNS: Final = frozenset(
    {
        "Administrative",
        "Informational",
        "ProductRelated",
        "OperatingSystems",
        "Browser",
        "Region",
        "TrafficType",
    }
)
_STRING_COLUMNS: Final = frozenset({"Month", "VisitorType"})
_BOOLEANS: Final = {
    "TRUE": True,
    "FALSE": False,
    "True": True,
    "False": False,
    "1": True,
    "0": False,
}


class DatasetError(BadRequest):
    """A data file that cannot be read as the data set it claims to be."""

    code = "dataset_invalid"


@dataclass(frozen=True, slots=True)
class LabelledRows:
    """Feature rows in the raw UCI value shapes, and their labels (True: bought)."""

    rows: list[dict[str, object]]
    labels: list[bool]
    source: str  # the file they came from, for messages and reports

    def __len__(self) -> int:
        return len(self.rows)

    def head(self, n: int) -> LabelledRows:
        """The first `n` rows (a quick subset for tests and smoke runs)."""
        return LabelledRows(self.rows[:n], self.labels[:n], self.source)


def _boolean(text: str, path: Path, line: int, column: str) -> bool:
    try:
        return _BOOLEANS[text.strip()]
    except KeyError:
        raise DatasetError(
            f"{path}, line {line}: {column} is {text!r}, not TRUE or FALSE.",
            field=column,
            hint="Give a CSV in the UCI Online Shoppers shape (see docs/signals.md).",
        ) from None


def read_uci(path: Path | str, *, labelled: bool = True) -> LabelledRows:
    """Read a CSV in the UCI Online Shoppers shape (header row with the UCI column names).

    Extra columns are ignored; a missing feature column, or ``Revenue`` when `labelled`, is a
    `DatasetError` naming the file and the column. Unlabelled files give labels all False.
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(
            f"Cannot read {path}: {exc.strerror or exc}.",
            hint="Give the path of a UCI-shaped CSV, e.g. "
            "../shared/data/uci_online_shoppers_intention/train.csv.",
        ) from exc
    rows: list[dict[str, object]] = []
    labels: list[bool] = []
    with handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or ())
        needed = [*UCI_COLUMNS, LABEL] if labelled else list(UCI_COLUMNS)
        missing = [c for c in needed if c not in header]
        if missing:
            raise DatasetError(
                f"{path} has no column {', '.join(missing)}.",
                field=missing[0],
                hint="The header must name the UCI Online Shoppers columns: "
                + ",".join(needed)
                + ".",
            )
        for line, record in enumerate(reader, start=2):
            row: dict[str, object] = {}
            for column in UCI_COLUMNS:
                text = record[column]
                try:
                    if column in _STRING_COLUMNS:
                        row[column] = text.strip()
                    elif column == "Weekend":
                        row[column] = _boolean(text, path, line, column)
                    elif column in _INTEGER_COLUMNS:
                        row[column] = int(float(text))
                    else:
                        row[column] = float(text)
                except (TypeError, ValueError):
                    raise DatasetError(
                        f"{path}, line {line}: {column} is {text!r}, not a number.",
                        field=column,
                        hint="Give a CSV in the UCI Online Shoppers shape.",
                    ) from None
            rows.append(row)
            labels.append(_boolean(record[LABEL], path, line, LABEL) if labelled else False)
    return LabelledRows(rows, labels, str(path))


@dataclass(frozen=True, slots=True)
class DigineticaSession:
    """One DIGINETICA session: its item views in time order and its first purchase, if any."""

    session_id: str
    user_id: str | None
    day: str  # eventdate, YYYY-MM-DD
    views: tuple[tuple[int, str], ...]  # (ms since the session started, item id)
    first_purchase_ms: int | None  # ms since the session started; None: did not buy
    bought: frozenset[str]

    @property
    def start(self) -> datetime:
        """The session's start: midnight UTC of its day (the data set gives no time of day)."""
        return datetime.fromisoformat(self.day).replace(tzinfo=UTC)


def _read_semicolon(path: Path) -> Iterator[dict[str, str]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(
            f"Cannot read {path}: {exc.strerror or exc}.",
            hint="Give the folder holding sample_train-item-views.csv and train-purchases.csv.",
        ) from exc
    with handle:
        yield from csv.DictReader(handle, delimiter=";")


def read_diginetica(folder: Path | str) -> list[DigineticaSession]:
    """Sessions of ``sample_train-item-views.csv`` joined on session id with
    ``train-purchases.csv``, in session-id order. A session bought if any purchase row names
    it; ``first_purchase_ms`` is the earliest purchase ``timeframe``."""
    folder = Path(folder)
    views: dict[str, list[tuple[int, str]]] = {}
    meta: dict[str, tuple[str | None, str]] = {}
    for record in _read_semicolon(folder / "sample_train-item-views.csv"):
        sid = record["session_id"]
        views.setdefault(sid, []).append((int(record["timeframe"]), record["item_id"]))
        user = record["user_id"]
        meta.setdefault(sid, (None if user in ("", "NA") else user, record["eventdate"]))
    first: dict[str, int] = {}
    bought: dict[str, set[str]] = {}
    for record in _read_semicolon(folder / "train-purchases.csv"):
        sid = record["sessionId"]
        if sid not in views:
            continue
        at = int(record["timeframe"])
        first[sid] = min(at, first.get(sid, at))
        bought.setdefault(sid, set()).add(record["itemId"])
    sessions = []
    for sid in sorted(views, key=int):
        user_id, day = meta[sid]
        sessions.append(
            DigineticaSession(
                session_id=sid,
                user_id=user_id,
                day=day,
                views=tuple(sorted(views[sid])),
                first_purchase_ms=first.get(sid),
                bought=frozenset(bought.get(sid, ())),
            )
        )
    return sessions
