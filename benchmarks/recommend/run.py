"""Recommendations benchmark: training time for 1 M interactions, and p50/p99 latency of
`GET /v1/recommendations` with 50,000 items, 20,000 profiles and stock filtering on, next to
a baseline measured in the same run.

    .venv/bin/python benchmarks/recommend/run.py [--backend sqlite|postgres|both]
        [--items 50000] [--profiles 20000] [--interactions 1000000] [--reads 2000]

- Data: 50,000 active products (3 % more inactive) in 40 categories, one SKU each; 10 stores
  and a warehouse (real actions); the warehouse stocks 70 % of the SKUs and each store a
  random 20 %. 20,000 profiles, a third with a stated preferred store; 1 M interactions
  (70 % views, 15 % cart adds, 13 % purchases, 2 % returns) drawn from 50 taste clusters
  with a long-tailed activity per person, over 180 days; bought-together and viewed-next
  pairs for the live sources. The projection tables are filled directly (what the pipeline
  would have written), so the set-up takes seconds rather than the replay of 1 M events;
  then ANALYZE, as a live database's statistics would be.
- Training: `polku.recommend.training.train` (read, popularity, BM25 item-item, ALS with 64
  factors, TF-IDF content, store the bundle), timed per step.
- Serving: `queries.recommend` in-process (the work of the API without HTTP), and
  `GET /v1/recommendations` over HTTP on a real `polku serve` (one request at a time on a
  kept-alive connection, httpx and then the standard library's http.client, whose own
  CPU per request is a fraction of httpx's) next to `GET /healthz` of the same server.
  In-process, the GC is tuned as `polku serve` tunes it once started (`polku.gctune`). A
  request is a random profile with a context mix of 50 % home, 30 % product page, 10 % cart,
  10 % next best offer, k=10, stock filtered online and at the person's store. In-process
  it also reports each request's CPU time and the load average: on a shared machine the
  wall-time p99 is mostly other processes' scheduling, the CPU time much less so.

Budget (issue 6): recommendations p99 at most 5 ms in the embedded mode.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner

# The availability benchmark's helpers (temporary databases, a real `polku serve`, timed
# GETs, percentiles), loaded under their own name: both scripts are called run.py.
_spec = importlib.util.spec_from_file_location(
    "availability_run", Path(__file__).resolve().parents[1] / "availability" / "run.py"
)
assert _spec is not None and _spec.loader is not None
_availability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_availability)
ALL_DAY, CITIES = _availability.ALL_DAY, _availability.CITIES
database, server, timed_gets = (
    _availability.database,
    _availability.server,
    _availability.timed_gets,
)
ms, pct = _availability.ms, _availability.pct

from polku.commerce.catalog.tables import pairs, products, variants  # noqa: E402
from polku.commerce.locations.actions import create_location  # noqa: E402
from polku.commerce.stock.tables import levels  # noqa: E402
from polku.gctune import tune_for_throughput  # noqa: E402
from polku.identity.tables import event_profiles, identifiers, profile_ids  # noqa: E402
from polku.profiles.tables import profiles  # noqa: E402
from polku.recommend import queries  # noqa: E402
from polku.recommend.interactions import WEIGHTS  # noqa: E402
from polku.recommend.serving import bundle  # noqa: E402
from polku.recommend.tables import interactions, transitions  # noqa: E402
from polku.recommend.training import train  # noqa: E402
from polku.runtime import Runtime  # noqa: E402
from polku.storage.engine import writing  # noqa: E402

WS = "default"
CLUSTERS = 50
CATEGORIES = 40
DAY_MS = 86_400_000
KINDS = (("view", 0.70), ("cart", 0.15), ("purchase", 0.13), ("return", 0.02))
EVENT_OF = {
    "view": "Product Viewed",
    "cart": "Product Added",
    "purchase": "Order Completed",
    "return": "Order Refunded",
}


def insert(runtime: Runtime, table: Any, rows: list[dict[str, Any]], chunk: int = 20_000) -> None:
    for start in range(0, len(rows), chunk):
        with writing(runtime.engine) as conn:
            conn.execute(table.insert(), rows[start : start + chunk])


def load(
    runtime: Runtime, n_items: int, n_profiles: int, n_interactions: int, rng: random.Random
) -> tuple[list[str], list[str]]:
    """Everything above; returns (active product ids, profile ids)."""
    started = time.perf_counter()
    now = int(time.time() * 1000)
    stores = []
    for n in range(10):
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
                "latitude": lat,
                "longitude": lon,
                "click_and_collect": True,
            },
            hours=ALL_DAY,
        )
        stores.append(location_id)
    create_location(
        runtime,
        WS,
        {
            "location_id": "wh-0",
            "name": "Varasto",
            "kind": "warehouse",
            "city": "Vantaa",
            "postal_code": "01510",
        },
    )
    total = int(n_items * 1.03)
    ids = [f"P{n:06d}" for n in range(total)]
    cluster_of = {pid: rng.randrange(CLUSTERS) for pid in ids}
    product_rows, variant_rows, stock_rows = [], [], []
    for n, pid in enumerate(ids):
        category = ["Kaikki", f"Osasto {cluster_of[pid] % CATEGORIES}"]
        product_rows.append(
            {
                "workspace_id": WS,
                "product_id": pid,
                "name": f"Tuote {pid} malli {cluster_of[pid]}",
                "description": f"Kuvaus {n % 997} sarja {cluster_of[pid]}",
                "brand": f"Merkki {n % 120}",
                "category": orjson.dumps(category).decode(),
                "category_key": " > ".join(category),
                "attributes": "{}",
                "translations": "{}",
                "active": n < n_items,
                "created_at": now,
                "updated_at": now,
            }
        )
        variant_rows.append(
            {
                "workspace_id": WS,
                "sku": f"{pid}-1",
                "product_id": pid,
                "price_minor": 1000 + n % 9000,
                "currency": "EUR",
                "attributes": "{}",
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        places = (["wh-0"] if rng.random() < 0.7 else []) + [
            s for s in stores if rng.random() < 0.2
        ]
        for loc in places:
            stock_rows.append(
                {
                    "workspace_id": WS,
                    "location_id": loc,
                    "sku": f"{pid}-1",
                    "on_hand": rng.randint(1, 12),
                    "reserved": 0,
                    "updated_at": now,
                }
            )
    insert(runtime, products, product_rows)
    insert(runtime, variants, variant_rows)
    insert(runtime, levels, stock_rows)
    people = [f"prof-{n:06d}" for n in range(n_profiles)]
    insert(
        runtime,
        profile_ids,
        [
            {"profile_id": p, "workspace_id": WS, "created_at": now, "created_offset": 0}
            for p in people
        ],
    )
    insert(
        runtime,
        identifiers,
        [
            {
                "workspace_id": WS,
                "id_type": "user_id",
                "value": f"user-{n}",
                "profile_id": p,
                "shared": False,
                "first_seen": now,
                "added_offset": 0,
            }
            for n, p in enumerate(people)
        ],
    )
    insert(
        runtime,
        profiles,
        [
            {
                "profile_id": p,
                "workspace_id": WS,
                "traits": orjson.dumps(
                    {"preferred_store": rng.choice(stores)} if n % 3 == 0 else {}
                ).decode(),
                "trait_times": "{}",
                "consent": "{}",
                "channels": "{}",
                "first_seen": now,
                "last_seen": now,
                "event_count": 0,
                "order_count": 0,
                "last_offset": 0,
            }
            for n, p in enumerate(people)
        ],
    )
    by_cluster: dict[int, list[str]] = {}
    for pid in ids:
        by_cluster.setdefault(cluster_of[pid], []).append(pid)
    tastes = [(rng.randrange(CLUSTERS), rng.randrange(CLUSTERS)) for _ in people]
    activity = [rng.paretovariate(1.2) for _ in people]
    total_activity = sum(activity)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    ep_rows: list[dict[str, Any]] = []
    ri_rows: list[dict[str, Any]] = []
    offset = 0
    for person, share in zip(range(n_profiles), activity, strict=True):
        count = max(1, round(n_interactions * share / total_activity))
        first, second = tastes[person]
        for _ in range(count):
            offset += 1
            cluster = first if rng.random() < 0.7 else second
            pool = by_cluster[cluster] if rng.random() < 0.9 else ids
            pid = pool[min(len(pool) - 1, int(rng.expovariate(1 / 40)))]  # popular head
            kind = rng.choices(kinds, weights)[0]
            at = now - rng.randrange(180 * DAY_MS)
            store = rng.choice(stores) if kind == "purchase" and rng.random() < 0.3 else None
            ep_rows.append(
                {
                    "offset": offset,
                    "workspace_id": WS,
                    "profile_id": people[person],
                    "timestamp": at,
                    "type": "track",
                    "event": EVENT_OF[kind],
                    "channel": "store" if store else "web",
                    "store_id": store,
                }
            )
            ri_rows.append(
                {
                    "offset": offset,
                    "line": 0,
                    "workspace_id": WS,
                    "product_id": pid,
                    "kind": kind,
                    "weight": WEIGHTS[kind],
                    "at": at,
                    "store_id": store,
                }
            )
        if len(ep_rows) >= 100_000:
            insert(runtime, event_profiles, ep_rows, 50_000)
            insert(runtime, interactions, ri_rows, 50_000)
            ep_rows, ri_rows = [], []
    insert(runtime, event_profiles, ep_rows, 50_000)
    insert(runtime, interactions, ri_rows, 50_000)
    pair_rows, next_rows = [], []
    for pid in ids[: n_items // 2]:
        partners = rng.sample(by_cluster[cluster_of[pid]], min(6, len(by_cluster[cluster_of[pid]])))
        for other in partners:
            if other != pid:
                pair_rows.append(
                    {
                        "workspace_id": WS,
                        "product_id": pid,
                        "other_id": other,
                        "orders": rng.randint(1, 40),
                    }
                )
                next_rows.append(
                    {
                        "workspace_id": WS,
                        "product_id": pid,
                        "next_id": other,
                        "count": rng.randint(1, 40),
                    }
                )
    insert(runtime, pairs, pair_rows)
    insert(runtime, transitions, next_rows)
    print(
        f"  loaded {n_items:,} active products (+{total - n_items:,} inactive), "
        f"{len(stock_rows):,} stock rows, {n_profiles:,} profiles, {offset:,} interactions, "
        f"{len(pair_rows):,} pairs in {time.perf_counter() - started:.0f} s"
    )
    return ids[:n_items], people


def asks(ids: list[str], people: list[str], reads: int, rng: random.Random) -> list[queries.Ask]:
    out = []
    for _ in range(reads):
        roll = rng.random()
        profile = rng.choice(people)
        if roll < 0.5:
            out.append(queries.Ask(context="home", profile=profile))
        elif roll < 0.8:
            out.append(queries.Ask(context="product", profile=profile, product=rng.choice(ids)))
        elif roll < 0.9:
            out.append(
                queries.Ask(context="cart", profile=profile, items=tuple(rng.sample(ids, 2)))
            )
        else:
            out.append(queries.Ask(context="next_best_offer", profile=profile, k=3))
    return out


def path_of(ask: queries.Ask) -> str:
    path = f"/v1/recommendations?context={ask.context}&profile={ask.profile}&k={ask.k}"
    if ask.product:
        path += f"&product={ask.product}"
    if ask.items:
        path += "&items=" + ",".join(ask.items)
    return path


def in_process(
    runtime: Runtime, requests: list[queries.Ask], cpu: list[float] | None = None
) -> list[float]:
    """Each request's wall time; with `cpu`, its CPU time too (`time.thread_time`), which
    other processes' load on a shared machine inflates far less than the wall time."""
    out: list[float] = []
    empty = 0
    for ask in requests:
        t0, c0 = time.perf_counter(), time.thread_time()
        with runtime.engine.connect() as conn:
            body = queries.recommend(conn, WS, ask, at=datetime.now(UTC))
        out.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.thread_time() - c0)
        empty += not body["items"]
    if empty:
        print(f"  note: {empty} of {len(requests)} answers were empty")
    return out


def stdlib_gets(url: str, paths: list[str], headers: dict[str, str]) -> list[float]:
    """As `timed_gets`, with the standard library's client on one kept-alive connection:
    httpx spends ~1 ms of CPU per request on its own side (2 ms on an answer of ~8 KB), which
    on 2 cores is in series with the server's time."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    out: list[float] = []
    try:
        for path in paths:
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            out.append(time.perf_counter() - t0)
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    finally:
        conn.close()
    return out


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(17)
    print(f"\n## {backend}")
    with database(backend) as (settings, data):
        runtime = Runtime.open(settings)
        runtime.bootstrap()
        try:
            ids, people = load(runtime, args.items, args.profiles, args.interactions, rng)
            with writing(runtime.engine) as conn:  # the statistics a live database has
                # On SQLite only the state database: the log's file is attached read-only.
                conn.execute(text("ANALYZE main" if backend == "sqlite" else "ANALYZE"))
            t0 = time.perf_counter()
            report = train(runtime.engine, WS)
            took = time.perf_counter() - t0
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
            print(
                f"  training on {report.interactions:,} interactions ({report.people:,} people, "
                f"{report.items:,} items): {took:.1f} s ({steps})"
            )
            with runtime.engine.connect() as conn:
                t1 = time.perf_counter()
                loaded = bundle(conn, WS)
                print(f"  first load of the bundle: {time.perf_counter() - t1:.2f} s")
                assert loaded is not None
            requests = asks(ids, people, args.reads, rng)
            in_process(runtime, requests[:100])  # warm-up
            tune_for_throughput()  # what `polku serve` does once started: freeze, collect less
            load_before = os.getloadavg()[0]
            cpu: list[float] = []
            local = in_process(runtime, requests, cpu)
            print(
                f"  in-process:              p50 {ms(pct(local, 0.5))}  p99 {ms(pct(local, 0.99))}"
                f"  (load average {load_before:.2f} -> {os.getloadavg()[0]:.2f} on "
                f"{os.cpu_count()} cores)"
            )
            print(f"  in-process CPU time:     p50 {ms(pct(cpu, 0.5))}  p99 {ms(pct(cpu, 0.99))}")
            with server(settings, data) as (url, token):
                headers = {"Authorization": f"Bearer {token}"}
                paths = [path_of(a) for a in requests]
                asyncio.run(timed_gets(url, paths[:200], headers))  # warm-up, loads the bundle
                health = asyncio.run(timed_gets(url, ["/healthz"] * args.reads, {}))
                http = asyncio.run(timed_gets(url, paths, headers))
                lean_health = stdlib_gets(url, ["/healthz"] * args.reads, {})
                lean = stdlib_gets(url, paths, headers)
            print(f"  GET /v1/recommendations: p50 {ms(pct(http, 0.5))}  p99 {ms(pct(http, 0.99))}")
            print(
                f"  GET /healthz (baseline): p50 {ms(pct(health, 0.5))}  "
                f"p99 {ms(pct(health, 0.99))}"
            )
            print(
                f"  with http.client:        recommendations p50 {ms(pct(lean, 0.5))}  "
                f"p99 {ms(pct(lean, 0.99))}; /healthz p50 {ms(pct(lean_health, 0.5))}  "
                f"p99 {ms(pct(lean_health, 0.99))}"
            )
        finally:
            runtime.close()
    return {
        "train": took,
        "interactions": report.interactions,
        "local": (pct(local, 0.5), pct(local, 0.99)),
        "http": (pct(http, 0.5), pct(http, 0.99)),
        "health": (pct(health, 0.5), pct(health, 0.99)),
        "lean": (pct(lean, 0.5), pct(lean, 0.99)),
        "lean_health": (pct(lean_health, 0.5), pct(lean_health, 0.99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    print(banner("recommendations benchmark"))
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = {b: run(b, args) for b in backends}
    print(
        "\n| backend | training, 1 M interactions | in-process p50 / p99 | HTTP p50 / p99 "
        "| /healthz p50 / p99 | HTTP, http.client p50 / p99 | /healthz, http.client |"
    )
    print("|---|---|---|---|---|---|---|")
    for backend, r in results.items():
        print(
            f"| {backend} | {r['train']:.1f} s ({r['interactions']:,}) | {ms(r['local'][0])} / "
            f"{ms(r['local'][1])} | {ms(r['http'][0])} / {ms(r['http'][1])} | "
            f"{ms(r['health'][0])} / {ms(r['health'][1])} | {ms(r['lean'][0])} / "
            f"{ms(r['lean'][1])} | {ms(r['lean_health'][0])} / {ms(r['lean_health'][1])} |"
        )
    if "sqlite" in results:
        got = results["sqlite"]
        local, http, lean = got["local"][1], got["http"][1], got["lean"][1]
        print(
            f"\nBudget: recommendations p99 <= 5 ms (embedded): in-process {ms(local)} "
            f"({local / 0.005:.2f} of it), over HTTP {ms(http)} ({http / 0.005:.2f} of it; "
            f"with http.client as the client {ms(lean)}, {lean / 0.005:.2f} of it)"
        )


if __name__ == "__main__":
    main()
