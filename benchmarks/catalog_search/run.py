"""Catalogue search benchmark: p50/p99 of `search()` over a 10,000-product catalogue in the
embedded mode (SQLite), next to the same run's p50/p99 of `get_product` (one product with
its variants by primary key: the floor of any catalogue read).

    .venv/bin/python benchmarks/catalog_search/run.py [--products 10000] [--queries 2000]

The catalogue is synthetic but shaped like a Finnish clothing shop's: compound names
("Talvitakki", "Villapaita"), brands, a category tree, Finnish descriptions with English
translations of the names, three variants each. It is imported through
`actions.save_products` (the importer's path), so the import rate is printed too. Queries
mix inflected Finnish ("takkeja", "villapaitoja"), English plurals, two-word queries and
prefixes typed so far ("talvit"). Target: p99 a few milliseconds.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner

from polku.commerce.catalog.actions import save_products
from polku.commerce.catalog.analysis import warm
from polku.commerce.catalog.queries import get_product
from polku.commerce.catalog.search import search
from polku.commerce.catalog.validation import check_product
from polku.runtime import Runtime
from polku.settings import Settings

HEADS = [
    "talvi",
    "kevät",
    "sade",
    "untuva",
    "villa",
    "kuori",
    "juoksu",
    "vaellus",
    "lasten",
    "naisten",
    "miesten",
    "puuvilla",
    "nahka",
    "fleece",
    "neule",
    "ulkoilu",
]
NOUNS = [
    ("takki", "jacket"),
    ("paita", "shirt"),
    ("housut", "trousers"),
    ("kengät", "shoes"),
    ("pipo", "beanie"),
    ("hanskat", "gloves"),
    ("sukat", "socks"),
    ("mekko", "dress"),
    ("liivi", "vest"),
    ("huivi", "scarf"),
    ("laukku", "bag"),
    ("saappaat", "boots"),
]
ADJECTIVES = [
    "lämmin",
    "kevyt",
    "vedenpitävä",
    "pehmeä",
    "kestävä",
    "tyylikäs",
    "klassinen",
    "joustava",
    "hengittävä",
    "tuulenpitävä",
]
BRANDS = ["Pohjola", "Revontuli", "Kaamos", "Routa", "Halla", "Aalto", "Kuura", "Tunturi"]
COLOURS = ["musta", "valkoinen", "harmaa", "sininen", "punainen", "vihreä", "beige"]
QUERIES = [
    "takki",
    "takkeja",
    "talvitakki",
    "talvitakkeja",
    "villapaitoja",
    "kengät",
    "kenkiä",
    "juoksukengät",
    "pipo",
    "pipoja",
    "lämmin takki",
    "musta takki",
    "vedenpitävät saappaat",
    "sukat",
    "talvit",
    "villap",
    "jacket",
    "jackets",
    "shoes",
    "winter jacket",
    "kids boots",
    "nahkalaukku",
    "pohjola takki",
    "neule",
    "hanskoja",
    "kevyt mekko",
    "liivi",
    "huiveja",
    "sadetakki",
    "ulkoiluhousut",
]


def catalogue(n: int, rng: random.Random) -> list[dict[str, object]]:
    products: list[dict[str, object]] = []
    for i in range(n):
        head = rng.choice(HEADS)
        noun, english = rng.choice(NOUNS)
        brand = rng.choice(BRANDS)
        adjective = rng.choice(ADJECTIVES)
        name = f"{(head + noun).capitalize()} {brand} {rng.randint(1, 99)}"
        products.append(
            {
                "product_id": f"P{i:05d}",
                "name": name,
                "brand": brand,
                "description": f"{adjective.capitalize()} {head}{noun} {brand}-mallistosta. "
                f"Sopii arkeen ja ulkoiluun, {rng.choice(ADJECTIVES)} ja "
                f"{rng.choice(ADJECTIVES)}. Hoito-ohje: pese 40 asteessa.",
                "category": [rng.choice(["Naiset", "Miehet", "Lapset"]), noun.capitalize()],
                "translations": {"en": {"name": f"{brand} {head} {english}"}},
                "variants": [
                    {
                        "sku": f"P{i:05d}-{size}",
                        "size": size,
                        "colour": rng.choice(COLOURS),
                        "price": f"{rng.randint(10, 300)}.90",
                        "currency": "EUR",
                    }
                    for size in ("S", "M", "L")
                ],
            }
        )
    return products


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    print(banner("catalogue search benchmark"))
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other work on the machine)")
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.open(Settings.build(data_dir=Path(tmp), pipeline="off"))
        runtime.bootstrap()
        try:
            t0 = time.perf_counter()
            warm()
            print(f"dictionaries loaded in {time.perf_counter() - t0:.1f} s")
            inputs = [check_product(p) for p in catalogue(args.products, rng)]
            t0 = time.perf_counter()
            for start in range(0, len(inputs), 500):
                errors = save_products(runtime, "default", inputs[start : start + 500])
                assert not any(errors), errors
            took = time.perf_counter() - t0
            print(
                f"imported {len(inputs)} products ({3 * len(inputs)} variants) in {took:.1f} s "
                f"({len(inputs) / took:.0f} products/s, with the index and the events)"
            )
            queries = [rng.choice(QUERIES) for _ in range(args.queries)]
            ids = [f"P{rng.randrange(args.products):05d}" for _ in range(args.queries)]
            with runtime.engine.connect() as conn:
                for q in QUERIES:  # warm-up: caches, SQLite pages
                    search(conn, "default", q, lang="fi")
                timings: list[float] = []
                counts: list[int] = []
                for q in queries:
                    t0 = time.perf_counter()
                    result = search(conn, "default", q, lang="fi", k=10, related=6)
                    timings.append(time.perf_counter() - t0)
                    counts.append(result.total)
                baseline: list[float] = []
                for pid in ids:
                    t0 = time.perf_counter()
                    get_product(conn, "default", pid)
                    baseline.append(time.perf_counter() - t0)
        finally:
            runtime.close()
    p50, p99 = pct(timings, 0.5), pct(timings, 0.99)
    b50, b99 = pct(baseline, 0.5), pct(baseline, 0.99)
    print(
        f"search, k=10 with related items ({len(queries)} queries, median "
        f"{sorted(counts)[len(counts) // 2]} matches): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )
    print(f"get_product (baseline): p50 {b50:.2f} ms, p99 {b99:.2f} ms")
    print(f"ratio search/get_product at p99: {p99 / b99:.1f}x")
    slowest = sorted(zip(timings, queries, strict=True), reverse=True)[:5]
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("slowest:", ", ".join(f"{q!r} {t * 1000:.1f} ms" for t, q in slowest))


if __name__ == "__main__":
    main()
