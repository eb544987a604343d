"""Import a catalogue file (`polku import catalog FILE`): CSV, JSON or JSON Lines.

* **CSV**: one row per variant, with its product's columns (repeated, or left empty after
  the product's first row). Columns: ``product_id``, ``name``, ``description``, ``brand``,
  ``category`` (``Naiset > Takit``), ``image_url``, ``active``, ``attributes`` (a JSON
  object) and ``attr.<name>`` (one attribute each), ``name_fi``, ``name_en``,
  ``description_fi``, ``description_en``; for the variant ``sku``, ``colour`` (or
  ``color``), ``size``, ``price``, ``currency``, ``variant_image_url``, ``variant_active``,
  ``variant_attributes`` and ``variant_attr.<name>``. A row without a SKU is a product
  without variants. Comma, semicolon or tab separated (found from the header), UTF-8 with
  or without a byte-order mark, as spreadsheets save it.
* **JSON**: an array of products as the API takes them (``variants`` inside), or an object
  with that array under ``products``.
* **JSON Lines** (``.jsonl``, ``.ndjson``): one product per line.

Every product and variant is checked by `polku.commerce.catalog.validation`, as the API
checks it. A problem is reported with its row (CSV), line (JSON Lines) or item (JSON), the
field (the CSV column) and what to do, and only that row is left out: a bad variant leaves
its product and the other variants to be imported, a bad product field leaves out the
product's rows. The good products are upserted in batches, one transaction each (see
`actions.save_products`), so an interrupted import can simply be run again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from polku.commerce.catalog.actions import save_products
from polku.commerce.catalog.validation import (
    ProductInput,
    VariantInput,
    check_code,
    check_product_fields,
    check_variant,
)
from polku.errors import PolkuError

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = [
    "FORMATS",
    "CatalogFile",
    "ImportReport",
    "Problem",
    "import_catalog",
    "read_catalog",
]

Format = Literal["csv", "json", "jsonl"]
FORMATS: Final = ("csv", "json", "jsonl")

_PRODUCT_COLUMNS: Final = {
    "product_id": "product_id",
    "name": "name",
    "description": "description",
    "brand": "brand",
    "category": "category",
    "image_url": "image_url",
    "active": "active",
    "attributes": "attributes",
}
_TRANSLATION_COLUMNS: Final = {
    f"{what}_{lang}": (lang, what) for lang in ("fi", "en") for what in ("name", "description")
}
_VARIANT_COLUMNS: Final = {
    "sku": "sku",
    "colour": "colour",
    "color": "colour",
    "size": "size",
    "price": "price",
    "currency": "currency",
    "variant_image_url": "image_url",
    "variant_active": "active",
    "variant_attributes": "attributes",
}
_INDEX: Final = re.compile(r"^variants\[(\d+)\]\.(.*)$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the file: where (row, line or item number), the field, and what."""

    at: int
    field: str | None
    code: str
    message: str
    product_id: str | None = None
    sku: str | None = None


@dataclass(slots=True)
class _Candidate:
    product: ProductInput
    at: int  # where the product's own fields are
    variant_at: list[int]  # where each of its variants is


@dataclass(slots=True)
class CatalogFile:
    """A file read and checked: the products to write and the problems found."""

    unit: str  # "row", "line" or "item"
    candidates: list[_Candidate]
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)  # e.g. columns that were ignored


@dataclass(slots=True)
class ImportReport:
    unit: str
    products: int = 0  # products written (created, changed or unchanged)
    variants: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def _format_of(path: Path, given: str | None) -> Format:
    name = (given or path.suffix.lstrip(".")).lower()
    if name in ("jsonl", "ndjson"):
        return "jsonl"
    if name in ("csv", "json"):
        return "csv" if name == "csv" else "json"
    raise PolkuError(
        f"Cannot tell the format of {path.name!r} from its name.",
        field="format",
        code="unknown_format",
        hint="Name it .csv, .json or .jsonl, or pass --format csv|json|jsonl.",
    )


def _problem(
    at: int,
    exc: PolkuError,
    *,
    product_id: str | None = None,
    sku: str | None = None,
    field_name: str | None = None,
) -> Problem:
    return Problem(
        at=at,
        field=field_name if field_name is not None else exc.field,
        code=exc.code,
        message=f"{exc.message} {exc.hint or ''}".strip(),
        product_id=product_id,
        sku=sku,
    )


# -- JSON and JSON Lines ----------------------------------------------------------------


def _check_json_product(raw: Any, at: int, problems: list[Problem]) -> _Candidate | None:
    pid = raw.get("product_id") if isinstance(raw, dict) else None
    shown_pid = str(pid) if isinstance(pid, str | int) else None
    try:
        product = check_product_fields(
            {k: v for k, v in raw.items() if k != "variants"} if isinstance(raw, dict) else raw
        )
    except PolkuError as exc:
        problems.append(_problem(at, exc, product_id=shown_pid))
        return None
    listed = raw.get("variants") or []
    if not isinstance(listed, list):
        problems.append(
            Problem(
                at,
                "variants",
                "invalid_field",
                "variants must be a list of variants.",
                product.product_id,
            )
        )
        return None
    checked: list[VariantInput] = []
    seen: set[str] = set()
    for i, item in enumerate(listed):
        where = f"variants[{i}]."
        sku = item.get("sku") if isinstance(item, dict) else None
        try:
            if isinstance(item, dict) and item.get("product_id") not in (None, product.product_id):
                raise PolkuError(
                    "The variant names another product than the one it is listed under.",
                    field=f"{where}product_id",
                    code="invalid_field",
                    hint="Leave product_id out of variants listed with their product.",
                )
            variant = check_variant(
                {k: v for k, v in item.items() if k != "product_id"}
                if isinstance(item, dict)
                else item,
                where,
            )
            if variant.sku in seen:
                raise PolkuError(
                    f"SKU {variant.sku!r} is listed twice for this product.",
                    field=f"{where}sku",
                    code="duplicate_sku",
                    hint="Give each variant its own SKU.",
                )
        except PolkuError as exc:
            problems.append(
                _problem(at, exc, product_id=product.product_id, sku=str(sku) if sku else None)
            )
            continue
        seen.add(variant.sku)
        checked.append(variant)
    return _Candidate(replace(product, variants=tuple(checked)), at, [at] * len(checked))


def _read_json(text: str, lines: bool) -> CatalogFile:
    problems: list[Problem] = []
    items: list[tuple[int, Any]] = []
    if lines:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((number, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                problems.append(Problem(number, None, "invalid_json", f"Not JSON: {exc}."))
    else:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise PolkuError(
                f"The file is not JSON: {exc}.",
                code="invalid_json",
                hint="Send an array of products, or one product per line as JSON Lines (.jsonl).",
            ) from None
        if isinstance(data, dict) and isinstance(data.get("products"), list):
            data = data["products"]
        if not isinstance(data, list):
            raise PolkuError(
                'A JSON catalogue must be an array of products (or {"products": [...]}).',
                code="invalid_json",
                hint="Wrap the products in [ ... ], or use JSON Lines (.jsonl).",
            )
        items = list(enumerate(data, start=1))
    candidates: list[_Candidate] = []
    first_at: dict[str, int] = {}
    for at, raw in items:
        candidate = _check_json_product(raw, at, problems)
        if candidate is None:
            continue
        pid = candidate.product.product_id
        if pid in first_at:
            problems.append(
                Problem(
                    at,
                    "product_id",
                    "duplicate_product",
                    f"Product {pid!r} is also at {first_at[pid]}; it is imported from there "
                    "only. Merge the two entries.",
                    pid,
                )
            )
            continue
        first_at[pid] = at
        candidates.append(candidate)
    return CatalogFile("line" if lines else "item", candidates, problems)


# -- CSV ------------------------------------------------------------------------------


def _rows(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    head = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=head.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], iter(())

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            yield reader.line_num, {h: c.strip() for h, c in zip(header, cells, strict=False)}

    return header, rows()


def _csv_product(row: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for column, name in _PRODUCT_COLUMNS.items():
        if row.get(column):
            raw[name] = row[column]
    attributes = _json_cell(row.get("attributes"))
    extra = {k.removeprefix("attr."): v for k, v in row.items() if k.startswith("attr.") and v}
    if extra:
        raw["attributes"] = {**(attributes if isinstance(attributes, dict) else {}), **extra}
    translations: dict[str, dict[str, str]] = {}
    for column, (lang, what) in _TRANSLATION_COLUMNS.items():
        if row.get(column):
            translations.setdefault(lang, {})[what] = row[column]
    if translations:
        raw["translations"] = translations
    return raw


def _csv_variant(row: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for column, name in _VARIANT_COLUMNS.items():
        if row.get(column):
            raw[name] = row[column]
    attributes = _json_cell(row.get("variant_attributes"))
    extra = {
        k.removeprefix("variant_attr."): v
        for k, v in row.items()
        if k.startswith("variant_attr.") and v
    }
    if extra:
        raw["attributes"] = {**(attributes if isinstance(attributes, dict) else {}), **extra}
    return raw


def _json_cell(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # validation says what is wrong with it


def _product_column(field_name: str | None) -> str | None:
    """The CSV column behind a product field path (``translations.fi.name`` -> name_fi)."""
    if field_name is None:
        return None
    parts = field_name.split(".")
    if parts[0] == "translations" and len(parts) >= 3:
        return f"{parts[2]}_{parts[1]}"
    if parts[0] == "attributes" and len(parts) >= 2:
        return "attr." + ".".join(parts[1:])
    return field_name.split("[")[0]


def _variant_column(field_name: str | None, row: Mapping[str, str]) -> str | None:
    if field_name is None:
        return None
    name, _, rest = field_name.partition(".")
    if name == "colour" and "color" in row and "colour" not in row:
        return "color"
    column = {"image_url": "variant_image_url", "active": "variant_active"}.get(name, name)
    if name == "attributes":
        return "variant_attr." + rest if rest else "variant_attributes"
    return column


def _read_csv(text: str) -> CatalogFile:
    header, rows = _rows(text)
    known = {*_PRODUCT_COLUMNS, *_TRANSLATION_COLUMNS, *_VARIANT_COLUMNS}
    notes = [
        f"Column {h!r} is not a catalogue column and was ignored."
        for h in header
        if h and h not in known and not h.startswith(("attr.", "variant_attr."))
    ]
    problems: list[Problem] = []
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for at, row in rows:
        try:
            pid = check_code(row.get("product_id") or None, "product_id")
        except PolkuError as exc:
            problems.append(_problem(at, exc, sku=row.get("sku") or None))
            continue
        groups.setdefault(pid, []).append((at, row))
    candidates: list[_Candidate] = []
    sku_at: dict[str, int] = {}
    for pid, product_rows in groups.items():
        first_at, first = product_rows[0]
        base = _csv_product(first)
        try:
            product = check_product_fields(base)
        except PolkuError as exc:
            problems.append(
                _problem(first_at, exc, product_id=pid, field_name=_product_column(exc.field))
            )
            for at, row in product_rows[1:]:
                problems.append(
                    Problem(
                        at,
                        None,
                        "product_refused",
                        f"Left out with its product {pid!r}: see row {first_at}.",
                        pid,
                        row.get("sku") or None,
                    )
                )
            continue
        checked: list[VariantInput] = []
        checked_at: list[int] = []
        for at, row in product_rows:
            sku = row.get("sku") or None
            differs = [c for c, v in _csv_product(row).items() if base.get(c) != v]
            if at != first_at and differs:
                column = _product_column(differs[0]) or differs[0]
                problems.append(
                    Problem(
                        at,
                        column,
                        "conflicting_product",
                        f"{column} differs from row {first_at} of product {pid!r}; a "
                        "product's columns must be the same on all its rows (or empty "
                        "after the first).",
                        pid,
                        sku,
                    )
                )
                continue
            if sku is None:
                continue
            try:
                variant = check_variant(_csv_variant(row))
            except PolkuError as exc:
                problems.append(
                    _problem(
                        at, exc, product_id=pid, sku=sku, field_name=_variant_column(exc.field, row)
                    )
                )
                continue
            if variant.sku in sku_at:
                problems.append(
                    Problem(
                        at,
                        "sku",
                        "duplicate_sku",
                        f"SKU {variant.sku!r} is also on row {sku_at[variant.sku]}; each "
                        "SKU may appear once.",
                        pid,
                        variant.sku,
                    )
                )
                continue
            sku_at[variant.sku] = at
            checked.append(variant)
            checked_at.append(at)
        candidates.append(
            _Candidate(replace(product, variants=tuple(checked)), first_at, checked_at)
        )
    return CatalogFile("row", candidates, problems, notes)


def read_catalog(path: Path, fmt: str | None = None) -> CatalogFile:
    """Read and check the catalogue file `path` (format from its name unless `fmt`)."""
    kind = _format_of(path, fmt)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolkuError(
            f"{path.name} is not UTF-8 text (byte {exc.start}).",
            code="invalid_encoding",
            hint="Save the file as UTF-8 (in a spreadsheet: CSV UTF-8).",
        ) from None
    if kind == "csv":
        return _read_csv(text)
    return _read_json(text, lines=kind == "jsonl")


# -- writing --------------------------------------------------------------------------------


def _without(candidate: _Candidate, index: int) -> _Candidate:
    variants = list(candidate.product.variants)
    rows = list(candidate.variant_at)
    del variants[index], rows[index]
    return _Candidate(replace(candidate.product, variants=tuple(variants)), candidate.at, rows)


def import_catalog(
    runtime: Runtime,
    workspace_id: str,
    source: CatalogFile,
    *,
    batch: int = 200,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert the checked products of `source`, `batch` products per transaction; calls
    `progress(n)` after each batch with the products it held."""
    report = ImportReport(source.unit, problems=list(source.problems), notes=list(source.notes))
    pending = list(source.candidates)
    for start in range(0, len(pending), batch):
        todo = pending[start : start + batch]
        while todo:
            errors = save_products(runtime, workspace_id, [c.product for c in todo])
            retry: list[_Candidate] = []
            for candidate, error in zip(todo, errors, strict=True):
                if error is None:
                    report.products += 1
                    report.variants += len(candidate.product.variants)
                    continue
                match = _INDEX.match(error.field or "")
                if error.code == "sku_taken" and match:
                    index = int(match.group(1))
                    sku = candidate.product.variants[index].sku
                    at = candidate.variant_at[index]
                    field_name = "sku" if source.unit == "row" else error.field
                    report.problems.append(
                        _problem(
                            at,
                            error,
                            product_id=candidate.product.product_id,
                            sku=sku,
                            field_name=field_name,
                        )
                    )
                    retry.append(_without(candidate, index))
                else:
                    report.problems.append(
                        _problem(candidate.at, error, product_id=candidate.product.product_id)
                    )
            todo = retry
        if progress is not None:
            progress(len(pending[start : start + batch]))
    report.problems.sort(key=lambda p: p.at)
    return report
