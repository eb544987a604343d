"""Availability benchmark: p50/p99 of the availability of one product across 50 locations
with 10,000 SKUs loaded, and reservations per second under concurrency, on SQLite and on
PostgreSQL, next to baselines measured in the same run.

    .venv/bin/python benchmarks/availability/run.py [--backend sqlite|postgres|both]

- Catalogue: 2,000 products x 5 sizes = 10,000 SKUs; 48 stores (real Finnish coordinates,
  jittered) and 2 warehouses, every store open every day; every location stocks every SKU
  (500,000 stock rows) with 0-12 units.
- Availability: `queries.availability` in-process (the work of the API, without HTTP), and
  `GET /v1/availability` over HTTP (a real `polku serve`, one request at a time on a kept-
  alive connection) next to `GET /healthz` of the same server as the HTTP stack's own cost.
  Each read asks for a random product from a random customer position.
- Reservations: 8 threads reserving one unit of random SKUs at random stores for a fixed
  time (little contention), then 8 threads at the same SKU and store (all contention), with
  the no-oversell check at the end.

Budget (issue 4): availability p99 at most 5 ms in the embedded mode.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner

from polku.access.actions import create_admin_token
from polku.commerce.catalog.actions import save_products
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location
from polku.commerce.stock import actions as stock
from polku.commerce.stock import queries
from polku.errors import Conflict
from polku.runtime import Runtime
from polku.settings import Settings
from polku.storage.engine import make_engine, writing

ROOT = Path(__file__).resolve().parents[2]
POLKU = ROOT / ".venv" / "bin" / "polku"
POSTGRES = os.environ.get(
    "POLKU_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1/test"
)
WS = "default"
SIZES = ("XS", "S", "M", "L", "XL")
CITIES = [  # (city, postal code, latitude, longitude)
    ("Helsinki", "00100", 60.1699, 24.9384),
    ("Espoo", "02230", 60.1616, 24.7380),
    ("Vantaa", "01510", 60.2934, 25.0378),
    ("Tampere", "33100", 61.4978, 23.7610),
    ("Turku", "20100", 60.4518, 22.2666),
    ("Oulu", "90100", 65.0121, 25.4651),
    ("Jyväskylä", "40100", 62.2426, 25.7473),
    ("Kuopio", "70100", 62.8924, 27.6770),
    ("Lahti", "15100", 60.9827, 25.6612),
    ("Pori", "28100", 61.4851, 21.7974),
    ("Joensuu", "80100", 62.6010, 29.7636),
    ("Rovaniemi", "96100", 66.5039, 25.7294),
]
ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# -- setup ----------------------------------------------------------------------------------


@contextmanager
def database(backend: str) -> Iterator[tuple[Settings, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            yield Settings.build(data_dir=tmp, pipeline="off"), Path(tmp)
            return
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            yield Settings.build(database_url=url, data_dir=tmp, pipeline="off"), Path(tmp)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def load(runtime: Runtime, products: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """The catalogue, the locations and their stock; returns (product ids, store ids)."""
    started = time.perf_counter()
    ids = [f"P{n:05d}" for n in range(products)]
    for start in range(0, products, 200):
        batch = [
            ProductInput(
                product_id=pid,
                name=f"Tuote {pid}",
                category=("Naiset", "Takit"),
                variants=tuple(
                    VariantInput(
                        sku=f"{pid}-{size}", price_minor=4900 + n * 100, currency="EUR", size=size
                    )
                    for n, size in enumerate(SIZES)
                ),
            )
            for pid in ids[start : start + 200]
        ]
        errors = [e for e in save_products(runtime, WS, batch) if e is not None]
        if errors:
            raise RuntimeError(errors[0])
    stores: list[str] = []
    for n in range(48):
        city, postal, lat, lon = CITIES[n % len(CITIES)]
        location_id = f"store-{n:02d}"
        create_location(
            runtime,
            WS,
            {
                "location_id": location_id,
                "name": f"{city} {n}",
                "city": city,
                "postal_code": postal,
                "latitude": lat + rng.uniform(-0.05, 0.05),
                "longitude": lon + rng.uniform(-0.05, 0.05),
                "click_and_collect": True,
            },
            hours=ALL_DAY,
        )
        stores.append(location_id)
    for n in range(2):
        create_location(
            runtime,
            WS,
            {
                "location_id": f"wh-{n}",
                "name": f"Varasto {n}",
                "kind": "warehouse",
                "city": "Vantaa",
                "postal_code": "01510",
            },
        )
    skus = [f"{pid}-{size}" for pid in ids for size in SIZES]
    for location in [*stores, "wh-0", "wh-1"]:
        for start in range(0, len(skus), 1000):
            lines = [stock.Line(sku, rng.randint(1, 12)) for sku in skus[start : start + 1000]]
            stock.receive(runtime, WS, location, lines)
    print(
        f"  loaded {len(skus):,} SKUs, 50 locations, {len(skus) * 50:,} stock rows "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return ids, stores


# -- availability ---------------------------------------------------------------------------


def in_process(runtime: Runtime, ids: list[str], reads: int, rng: random.Random) -> list[float]:
    out: list[float] = []
    at = datetime.now(UTC)
    for _ in range(reads):
        city = rng.choice(CITIES)
        t0 = time.perf_counter()
        with runtime.engine.connect() as conn:
            body = queries.availability(
                conn, WS, product_id=rng.choice(ids), near=(city[2], city[3]), at=at
            )
        out.append(time.perf_counter() - t0)
        assert len(body["variants"]) == len(SIZES) and len(body["variants"][0]["stores"]) == 48
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(settings: Settings, data: Path) -> Iterator[tuple[str, str]]:
    """A real `polku serve` on the loaded database; yields (url, admin token)."""
    engine = make_engine(settings)
    with writing(engine) as conn:
        token = create_admin_token(conn, WS, "benchmark").token
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLKU_")}
    env.update(POLKU_DATA_DIR=str(data), POLKU_PORT=str(port), POLKU_PIPELINE="off")
    if settings.database_url.reveal():
        env["POLKU_DATABASE_URL"] = settings.database_url.reveal()
    log = (data / "serve.log").open("wb")
    process = subprocess.Popen([str(POLKU), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((data / "serve.log").read_text())
            time.sleep(0.1)
        yield url, token
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()


async def timed_gets(url: str, paths: list[str], headers: dict[str, str]) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for path in paths:
            t0 = time.perf_counter()
            response = await client.get(path)
            out.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    return out


def over_http(
    url: str, token: str, ids: list[str], reads: int, rng: random.Random
) -> tuple[list[float], list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    paths = []
    for _ in range(reads):
        city = rng.choice(CITIES)
        paths.append(f"/v1/availability?product_id={rng.choice(ids)}&lat={city[2]}&lon={city[3]}")
    asyncio.run(timed_gets(url, paths[:100], headers))  # warm-up
    health = asyncio.run(timed_gets(url, ["/healthz"] * reads, {}))
    found = asyncio.run(timed_gets(url, paths, headers))
    return found, health


# -- reservations ---------------------------------------------------------------------------


def reservations(
    runtime: Runtime, pick: Callable[[random.Random], tuple[str, str]], seconds: float
) -> tuple[int, int]:
    """(made, refused) by 8 threads reserving one unit of `pick()` for `seconds`."""
    made = refused = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(seed: int) -> None:
        nonlocal made, refused
        rng = random.Random(seed)
        while time.monotonic() < stop:
            store, sku = pick(rng)
            try:
                stock.reserve(
                    runtime,
                    WS,
                    store,
                    [stock.Line(sku, 1)],
                    user_id=f"u{seed}",
                    hold=timedelta(hours=1),
                )
                with lock:
                    made += 1
            except Conflict:
                with lock:
                    refused += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return made, refused


def run(backend: str, products: int, reads: int, seconds: float) -> dict[str, Any]:
    rng = random.Random(11)
    print(f"\n## {backend}")
    with database(backend) as (settings, data):
        runtime = Runtime.open(settings)
        runtime.bootstrap()
        try:
            ids, stores = load(runtime, products, rng)
            local = in_process(runtime, ids, reads, rng)
            print(
                f"  availability in-process:  p50 {ms(pct(local, 0.5))}  p99 {ms(pct(local, 0.99))}"
            )
            with server(settings, data) as (url, token):
                http, health = over_http(url, token, ids, reads, rng)
            print(
                f"  GET /v1/availability:     p50 {ms(pct(http, 0.5))}  p99 {ms(pct(http, 0.99))}"
            )
            print(
                f"  GET /healthz (baseline):  p50 {ms(pct(health, 0.5))}  "
                f"p99 {ms(pct(health, 0.99))}"
            )
            skus = [f"{pid}-{size}" for pid in ids for size in SIZES]
            spread = reservations(runtime, lambda r: (r.choice(stores), r.choice(skus)), seconds)
            print(f"  reservations, spread:     {spread[0] / seconds:,.0f}/s ({spread[1]} refused)")
            with runtime.engine.connect() as conn:
                before = queries.levels_of(conn, WS, sku=skus[0], location_id=stores[0])[0]
            hot = reservations(runtime, lambda r: (stores[0], skus[0]), seconds)
            with runtime.engine.connect() as conn:
                after = queries.levels_of(conn, WS, sku=skus[0], location_id=stores[0])[0]
            assert (
                hot[0] == before["sellable"]
                and after["sellable"] == 0
                and after["reserved"] <= after["on_hand"]
            ), (before, after, hot)
            print(
                f"  reservations, one SKU:    {hot[0]} made = the {before['sellable']} "
                f"sellable, {hot[1]} refused (no oversell)"
            )
            hot_rate = (hot[0] + hot[1]) / seconds
            print(f"  decisions at one SKU:     {hot_rate:,.0f}/s (made or refused)")
        finally:
            runtime.close()
    return {
        "local": (pct(local, 0.5), pct(local, 0.99)),
        "http": (pct(http, 0.5), pct(http, 0.99)),
        "health": (pct(health, 0.5), pct(health, 0.99)),
        "spread": spread[0] / seconds,
        "hot": hot_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--products", type=int, default=2000, help="x 5 sizes = SKUs")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(banner("availability benchmark"))
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = {b: run(b, args.products, args.reads, args.seconds) for b in backends}
    print(
        "\n| backend | in-process p50 / p99 | HTTP p50 / p99 | /healthz p50 / p99 "
        "| reservations/s spread | at one SKU |"
    )
    print("|---|---|---|---|---|---|")
    for backend, r in results.items():
        print(
            f"| {backend} | {ms(r['local'][0])} / {ms(r['local'][1])} | {ms(r['http'][0])} / "
            f"{ms(r['http'][1])} | {ms(r['health'][0])} / {ms(r['health'][1])} | "
            f"{r['spread']:,.0f} | {r['hot']:,.0f} |"
        )
    if "sqlite" in results:
        p99 = results["sqlite"]["local"][1]
        print(
            f"\nBudget: availability p99 <= 5 ms (embedded): in-process {ms(p99)} "
            f"({p99 / 0.005:.2f} of it)"
        )


if __name__ == "__main__":
    main()
