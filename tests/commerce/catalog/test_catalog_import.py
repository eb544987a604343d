"""`polku import catalog FILE`: CSV, JSON and JSON Lines, the same checks as the API, a
per-row problem report (and file), good rows imported, exit code 1 when any row failed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from conftest import Polku
from polku.cli import main
from polku.commerce.catalog.queries import get_product, get_variants

CSV = """\
product_id;name;description;brand;category;sku;colour;size;price;currency;attr.material;name_en
JKT-1;Talvitakki Lumi;Untuvatakki;Pohjola;Naiset > Takit;JKT-1-M;musta;M;249,90;EUR;untuva;Lumi
JKT-1;;;;;JKT-1-L;musta;L;249.90;EUR;;
JKT-1;;;;;JKT-1-XL;musta;XL;-3;EUR;;
SOX-1;Villasukat;Lämpimät sukat;;Naiset > Sukat;SOX-1-38;harmaa;38;19;EUX;;
HAT-1;;;;;HAT-1;;;9;EUR;;
CAP-1;Lippis;;;Asusteet;JKT-1-M;;;9;EUR;;
"""


def run(polku: Polku, path: Path, *args: str) -> tuple[int, str]:
    url = polku.runtime.settings.sqlalchemy_url
    options = ["--database", url] if not url.startswith("sqlite") else []
    data_dir = str(polku.runtime.settings.data_dir)
    result = CliRunner().invoke(
        main, ["import", "catalog", str(path), "--data-dir", data_dir, *options, *args]
    )
    return result.exit_code, result.output


def test_a_csv_imports_its_good_rows_and_reports_the_others(polku: Polku, tmp_path: Path) -> None:
    source = tmp_path / "catalogue.csv"
    source.write_text(CSV, encoding="utf-8-sig")  # as a spreadsheet saves it, with a BOM
    errors = tmp_path / "problems.csv"
    code, output = run(polku, source, "--errors", str(errors))
    assert code == 1, output
    assert "Imported 3 products with 2 variants." in output
    assert "row 4: price: price -3 is negative." in output
    with errors.open(encoding="utf-8") as f:
        rows = [(r["row"], r["field"], r["code"]) for r in csv.DictReader(f)]
    assert rows == [
        ("4", "price", "negative_price"),
        ("5", "currency", "unknown_currency"),
        ("6", "name", "missing_field"),
        ("7", "sku", "duplicate_sku"),
    ]
    with polku.runtime.engine.connect() as conn:
        jacket = get_product(conn, "default", "JKT-1")
        found = get_variants(conn, "default", ["JKT-1-M", "JKT-1-L", "JKT-1-XL", "SOX-1-38"])
    assert jacket is not None and jacket.attributes == {"material": "untuva"}
    assert jacket.translations == {"en": {"name": "Lumi"}}
    assert jacket.category == ("Naiset", "Takit")
    assert sorted(found) == ["JKT-1-L", "JKT-1-M"]
    assert str(found["JKT-1-M"].price) == "249.90"
    # Running the same file again changes nothing and reports the same problems.
    again, output = run(polku, source)
    assert again == 1 and "Imported 3 products with 2 variants." in output


def test_json_and_json_lines_use_the_api_shape(polku: Polku, tmp_path: Path) -> None:
    products = [
        {
            "product_id": "P-1",
            "name": "Sadetakki",
            "variants": [
                {"sku": "P-1-S", "price": 89, "currency": "EUR"},
                {"sku": "P-1-M", "price": 89, "currency": "JPY", "size": "M"},
                {"sku": "P-1-L", "price": "12.5", "currency": "JPY"},
            ],
        },
        {"product_id": "P-2", "name": "Pipo", "active": "maybe"},
    ]
    array = tmp_path / "catalogue.json"
    array.write_text(json.dumps({"products": products}))
    code, output = run(polku, array)
    assert code == 1, output
    assert "Imported 1 products with 2 variants." in output
    assert "item 1: variants[2].price:" in output and "[invalid_price]" in output
    assert "item 2: active:" in output
    lines = tmp_path / "more.jsonl"
    lines.write_text(
        json.dumps({"product_id": "P-3", "name": "Lapaset"})
        + "\n\n{not json\n"
        + json.dumps(
            {
                "product_id": "P-4",
                "name": "Kaulahuivi",
                "variants": [
                    {"sku": "P-1-S", "price": 5, "currency": "EUR"},  # P-1's SKU
                    {"sku": "P-4-1", "price": 5, "currency": "EUR"},
                ],
            }
        )
        + "\n"
    )
    code, output = run(polku, lines)
    assert code == 1, output
    assert "line 3: -: Not JSON" in output
    assert "line 4: variants[0].sku: SKU 'P-1-S' belongs to product 'P-1'." in output
    assert "Imported 2 products with 1 variants." in output
    with polku.runtime.engine.connect() as conn:
        scarf = get_product(conn, "default", "P-4")
    assert scarf is not None and [v.sku for v in scarf.variants] == ["P-4-1"]


def test_a_clean_file_exits_zero_and_an_unknown_format_is_a_usage_error(
    polku: Polku, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("product_id,name,sku,price,currency,colr\nA,Pipo,A-1,12.90,EUR,x\n")
    code, output = run(polku, good)
    assert code == 0, output
    assert "Imported 1 products with 1 variants." in output
    assert "Column 'colr' is not a catalogue column" in output
    odd = tmp_path / "catalogue.xml"
    odd.write_text("<products/>")
    code, output = run(polku, odd)
    assert code == 1 and "--format csv|json|jsonl" in output
