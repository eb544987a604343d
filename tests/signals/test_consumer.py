"""The signals consumer in the pipeline: features kept in tables, rules, model, routing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from conftest import Polku
from polku.errors import InvalidRule
from polku.log.nats import partition_of
from polku.log.sql import SqlPartition
from polku.log.tables import log_events
from polku.pipeline import checkpoints
from polku.pipeline.runner import Pipeline
from polku.pipeline.worker import ARCHIVE
from polku.runtime import Runtime, consumers
from polku.settings import Settings
from polku.signals.candidates import MODEL_KIND, Reason
from polku.signals.consumer import SignalsConsumer
from polku.signals.features import PersonState, SessionState, Tracker
from polku.signals.rules import RuleBook
from polku.signals.state import signal_pages, signal_people
from polku.signals.tables import signals


def track(anon: str, event: str, at: str, channel: str = "web", **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "anonymousId": anon,
        "messageId": str(uuid.uuid4()),
        "timestamp": at,
        "context": {"channel": channel},
        "properties": props,
    }


def page(anon: str, at: str, path: str) -> dict[str, Any]:
    return {
        "type": "page",
        "anonymousId": anon,
        "messageId": str(uuid.uuid4()),
        "timestamp": at,
        "context": {"channel": "web"},
        "properties": {"path": path},
    }


def post(polku: Polku, messages: list[dict[str, Any]]) -> None:
    response = polku.send("/v1/batch", {"batch": messages})
    assert response.status_code == 200, response.text
    polku.settle()


def signals_consumer(polku: Polku) -> SignalsConsumer:
    assert polku.runtime.pipeline is not None
    [found] = [c for c in polku.runtime.pipeline.consumers if isinstance(c, SignalsConsumer)]
    return found


def stored_signals(polku: Polku) -> list[Any]:
    with polku.runtime.engine.connect() as conn:
        return list(conn.execute(select(signals).order_by(signals.c.id)))


def people(polku: Polku) -> dict[str, tuple[PersonState, SessionState | None]]:
    with polku.runtime.engine.connect() as conn:
        rows = conn.execute(select(signal_people)).all()
    return {
        row.key: (
            PersonState.from_bytes(bytes(row.person)),
            SessionState.from_bytes(bytes(row.session)) if row.session is not None else None,
        )
        for row in rows
    }


def research(anon: str, day: str) -> list[dict[str, Any]]:
    """A shopper browsing, comparing and adding a jacket to the cart, on one day."""
    return [
        page(anon, f"{day}T08:00:00Z", "/"),
        track(anon, "Products Searched", f"{day}T08:00:20Z", query="takki"),
        track(anon, "Product Viewed", f"{day}T08:01:00Z", product_id="p1", name="Trail jacket"),
        track(anon, "Reviews Viewed", f"{day}T08:02:30Z", product_id="p1"),
        track(anon, "Product Added", f"{day}T08:03:00Z", product_id="p1", price=90, quantity=2),
        track(anon, "Delivery Info Viewed", f"{day}T08:03:40Z", product_id="p1"),
    ]


@dataclass
class FakeModel:
    """A model that is sure of everything, except that it breaks on some rows."""

    breaks_on_product_views: int = -1

    def probabilities(self, rows: Iterable[Mapping[str, object]]) -> list[float]:
        rows = list(rows)
        if any(r["ProductRelated"] == self.breaks_on_product_views for r in rows):
            raise RuntimeError("booster exploded")
        return [0.9 for _ in rows]

    def score(self, row: Mapping[str, object]) -> Any:
        @dataclass
        class Scored:
            probability: float
            reasons: tuple[Reason, ...]

        return Scored(
            0.9, (Reason("product_related", "Many product pages", "Monta tuotesivua", 0.7),)
        )


class BrokenRules(RuleBook):
    """The shipped rules, except that evaluating them fails on one product."""

    def evaluate(self, snapshot: Any, *args: Any, **kwargs: Any) -> Any:
        if snapshot.product_id == "boom":
            raise ValueError("rule exploded")
        return super().evaluate(snapshot, *args, **kwargs)


def test_the_pipeline_keeps_the_same_features_as_the_tracker(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    messages = research("anon-1", "2026-11-10")
    post(polku, messages[:3])
    post(polku, messages[3:])  # two batches: the state goes through the tables
    [(person, session)] = people(polku).values()
    tracker = Tracker()
    for m in messages:
        tracker.observe(m)
    assert person == tracker.people["anon:anon-1"]
    assert session == tracker.sessions["anon:anon-1"]
    assert session is not None
    assert session.counts == [0, 2, 3]  # home + delivery info; search, product, reviews
    # 20 s on the home page; 40 s search, 90 s product, 30 + 40 s reviews (the add is no view)
    assert session.seconds == [0.0, 20.0, 200.0]
    assert person.cart_value == 180.0 and person.cart_items == 2
    with polku.runtime.engine.connect() as conn:
        pages = {row.page: row for row in conn.execute(select(signal_pages))}
    assert set(pages) == set(tracker.pages.pages)
    assert pages["product:p1"].views == 2 and pages["product:p1"].unique_views == 1


def test_the_same_behaviour_twice_raises_one_signal(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    views = [
        track(
            "anon-2", "Product Viewed", f"2026-11-{d:02d}T10:00:00Z", product_id="p7", name="Tent"
        )
        for d in (2, 3, 4)
    ]
    post(polku, views)
    again = [{**m, "messageId": str(uuid.uuid4())} for m in views]
    post(polku, again)
    found = [s for s in stored_signals(polku) if s.kind == "repeat_product_views"]
    assert len(found) == 1
    [signal] = found
    assert orjson.loads(signal.products) == ["p7"]
    reasons = orjson.loads(signal.reasons)
    assert reasons[0]["en"] == "Viewed Tent 3 times in 7 days"
    assert reasons[0]["fi"] == "Katsoi tuotetta Tent 3 kertaa 7 päivässä"


def test_a_high_value_cart_idle_for_30_minutes_by_event_time(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    post(
        polku,
        [
            track(
                "anon-3",
                "Product Added",
                "2026-11-05T12:00:00Z",
                product_id="p2",
                price=160,
                quantity=1,
            ),
            track("anon-3", "Product Viewed", "2026-11-05T12:10:00Z", product_id="p3"),
        ],
    )
    post(polku, [page("someone-else", "2026-11-05T12:20:00Z", "/")])
    assert [s.kind for s in stored_signals(polku)] == []  # 20 minutes: not idle yet
    post(polku, [page("someone-else", "2026-11-05T12:31:00Z", "/ohje")])
    [signal] = stored_signals(polku)
    assert signal.kind == "high_value_cart_idle"
    due = datetime(2026, 11, 5, 12, 30, tzinfo=UTC)  # 12:00 + 30 min, in event time
    assert signal.at == int(due.timestamp() * 1000)
    assert orjson.loads(signal.products) == ["p2"]
    assert orjson.loads(signal.reasons)[0]["en"] == (
        "Left a cart worth 160.00 € untouched for 30 minutes"
    )
    post(polku, [page("someone-else", "2026-11-05T14:00:00Z", "/")])
    assert len(stored_signals(polku)) == 1  # fired once


def test_a_cart_bought_before_it_is_idle_raises_nothing(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    post(
        polku,
        [
            track(
                "anon-4",
                "Product Added",
                "2026-11-05T12:00:00Z",
                product_id="p2",
                price=160,
                quantity=1,
            ),
            track("anon-4", "Order Completed", "2026-11-05T12:05:00Z", order_id="o-4", revenue=160),
            page("someone-else", "2026-11-05T13:00:00Z", "/"),
        ],
    )
    assert stored_signals(polku) == []


def test_a_failing_model_or_rule_on_one_event_does_not_stop_the_pipeline(
    polku: Polku, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = signals_consumer(polku)
    consumer.scorer = FakeModel(breaks_on_product_views=2)
    consumer.rules = BrokenRules(consumer.rules.rules)
    messages = [
        track("anon-5", "Product Viewed", "2026-11-06T10:00:00Z", product_id="p1"),
        track("anon-5", "Product Viewed", "2026-11-06T10:01:00Z", product_id="p2"),  # model fails
        track("anon-5", "Product Viewed", "2026-11-06T10:02:00Z", product_id="boom"),  # rules fail
        track("anon-5", "Product Viewed", "2026-11-06T10:03:00Z", product_id="p4"),
    ]
    post(polku, messages)
    logged = caplog.text
    assert messages[1]["messageId"] in logged and "scoring failed" in logged
    assert messages[2]["messageId"] in logged and "rules failed" in logged
    [signal] = stored_signals(polku)  # from the first event; re-armed only below 0.4
    assert signal.kind == MODEL_KIND and signal.event_id == messages[0]["messageId"]
    assert orjson.loads(signal.reasons)[1]["code"] == "product_related"
    [(_, session)] = people(polku).values()
    assert session is not None and session.counts[2] == 4  # every event counted
    post(polku, [track("anon-5", "Product Viewed", "2026-11-06T10:04:00Z", product_id="p5")])
    assert polku.runtime.pipeline is not None
    assert polku.runtime.pipeline.position == polku.runtime.log.head()


def test_replay_gives_the_same_features(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    post(polku, research("anon-6", "2026-11-12"))
    post(polku, research("anon-7", "2026-11-12") + research("anon-6", "2026-11-13"))
    before = people(polku)
    with polku.runtime.engine.connect() as conn:
        pages_before = sorted(tuple(r) for r in conn.execute(select(signal_pages)))
    assert polku.runtime.pipeline is not None
    polku.runtime.pipeline.replay()
    assert people(polku) == before
    with polku.runtime.engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(select(signal_pages))) == pages_before


@pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_partitions_at_once_add_up_the_page_statistics(polku: Polku) -> None:
    """Two workers project a person's anonymous and signed-in events from two partitions at
    the same moment (the production mode, PostgreSQL only): profile rows are locked in one
    order, so nobody deadlocks, and the page statistics, only ever incremented, add up."""
    engine = polku.runtime.engine
    pipeline = polku.runtime.pipeline
    assert pipeline is not None
    polku.settle()
    pipeline.stop()  # from here on, the two partitions' pipelines below do the work
    start = polku.runtime.log.head()
    people = 10
    batch: list[dict[str, Any]] = []
    for i in range(people):
        for day in ("02", "03"):
            batch.append(
                track(f"dev-{i}", "Product Viewed", f"2026-11-{day}T10:00:00Z", product_id="p1")
            )
        batch.append(
            {
                "type": "identify",
                "userId": f"cust-{i}",
                "anonymousId": f"dev-{i}",
                "messageId": str(uuid.uuid4()),
                "timestamp": "2026-11-03T10:01:00Z",
            }
        )
        view = track("-", "Product Viewed", "2026-11-04T10:00:00Z", product_id="p1")
        del view["anonymousId"]
        batch.append({**view, "userId": f"cust-{i}"})
    assert polku.send("/v1/batch", {"batch": batch}).status_code == 200

    def chain() -> list[Any]:
        found = consumers(polku.runtime.identity)
        for consumer in found:
            if isinstance(consumer, SignalsConsumer):
                consumer.scorer = None
        return found

    with engine.begin() as conn:
        rows = conn.execute(
            select(log_events.c.offset, log_events.c.partition_key).where(
                log_events.c.offset > start
            )
        ).all()
        last = {0: start, 1: start}
        for offset, key in rows:
            part = partition_of(key, 2)
            last[part] = max(last[part], offset)
            conn.execute(
                update(log_events).where(log_events.c.offset == offset).values(partition=part)
            )
        for part in (0, 1):
            checkpoints.write(conn, checkpoints.scoped(ARCHIVE, part), last[part])
            for consumer in chain():
                checkpoints.write(conn, checkpoints.scoped(consumer.name, part), start)
    workers = [
        Pipeline(
            engine,
            SqlPartition(engine, part, checkpoints.scoped(ARCHIVE, part)),
            chain(),
            batch=3,
            scope=f".p{part}",
            shared=True,
        )
        for part in (0, 1)
    ]
    failures: list[BaseException] = []

    def work(worker: Pipeline) -> None:
        try:
            worker.run_until_caught_up(timeout=120)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not failures, failures
    with engine.connect() as conn:
        [stats] = conn.execute(select(signal_pages).where(signal_pages.c.page == "product:p1"))
    assert stats.views == 3 * people
    found = [s for s in stored_signals(polku) if s.kind == "repeat_product_views"]
    # one signal per person at most; a person whose signed-in view was projected before
    # the login merged the device gets the views folded in later, and no event re-evaluates
    assert len({s.profile_id for s in found}) == len(found) <= people


def test_views_before_signing_in_count_for_the_person(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    post(
        polku,
        [
            track("dev-8", "Product Viewed", "2026-11-02T10:00:00Z", product_id="p8", name="Pipo"),
            track("dev-8", "Product Viewed", "2026-11-03T10:00:00Z", product_id="p8", name="Pipo"),
        ],
    )
    login = {
        "type": "identify",
        "userId": "cust-8",
        "anonymousId": "dev-8",
        "messageId": str(uuid.uuid4()),
        "timestamp": "2026-11-03T10:05:00Z",
    }
    post(polku, [login])
    view = track("-", "Product Viewed", "2026-11-04T09:00:00Z", product_id="p8", name="Pipo")
    del view["anonymousId"]
    post(polku, [{**view, "userId": "cust-8"}])  # a new device: only the userId
    [signal] = stored_signals(polku)
    assert signal.kind == "repeat_product_views"
    assert orjson.loads(signal.reasons)[0]["en"] == "Viewed Pipo 3 times in 7 days"


def test_a_stock_check_at_a_store_near_home(polku: Polku) -> None:
    signals_consumer(polku).scorer = None
    for store in (
        {
            "location_id": "HEL-KAMPPI",
            "name": "Kamppi",
            "postal_code": "00100",
            "city": "Helsinki",
            "latitude": 60.1689,
            "longitude": 24.9322,
        },
        {
            "location_id": "TRE-RATINA",
            "name": "Ratina",
            "postal_code": "33100",
            "city": "Tampere",
            "latitude": 61.4928,
            "longitude": 23.7668,
        },
    ):
        body = {"name": store["city"], "address": ["Katu 1"], "click_and_collect": True, **store}
        response = polku.client.post("/v1/locations", json=body, headers=polku.admin)
        assert response.status_code in (200, 201), response.text
    identify = {
        "type": "identify",
        "anonymousId": "dev-9",
        "messageId": str(uuid.uuid4()),
        "timestamp": "2026-11-07T09:00:00Z",
        "traits": {"address": {"postal_code": "00510"}},
    }
    checks = [
        track(
            "dev-9", "Store Stock Checked", f"2026-11-07T09:0{m}:00Z", store_id=s, product_id="p1"
        )
        for m, s in ((1, "TRE-RATINA"), (2, "HEL-KAMPPI"), (3, "HEL-KAMPPI"))
    ]
    post(polku, [identify, *checks])
    [signal] = stored_signals(polku)
    assert signal.kind == "stock_check_near_home"
    assert signal.event_id == checks[1]["messageId"]
    assert orjson.loads(signal.details)["distance_km"] == 2.7
    assert orjson.loads(signal.reasons)[0]["en"] == (
        "Checked stock of p1 at Kamppi, 2.7 km from home"
    )


def test_a_rules_file_of_ones_own_replaces_the_shipped_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: searched_twice\n"
        "    when: {searches: {at_least: 2}}\n"
        "    reason: {en: 'Searched {searches} times', fi: 'Haki {searches} kertaa'}\n"
    )
    settings = Settings.build(data_dir=tmp_path, pipeline="thread", signal_rules=str(rules))
    runtime = Runtime.open(settings)
    try:
        assert runtime.pipeline is not None
        [consumer] = [c for c in runtime.pipeline.consumers if isinstance(c, SignalsConsumer)]
        assert [rule.name for rule in consumer.rules.rules] == ["searched_twice"]
    finally:
        runtime.close()
    rules.write_text("rules:\n  - name: searched_twice\n    when: {searches: {at_least: 2}}\n")
    with pytest.raises(InvalidRule, match="Rule 'searched_twice', field 'reason'"):
        Runtime.open(settings)
