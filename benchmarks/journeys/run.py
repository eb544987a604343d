"""Journeys benchmark: 100,000 enrollments waiting on timers, the throughput of due steps,
memory, and trigger-to-send latency through a real SMTP server.

    .venv/bin/python benchmarks/journeys/run.py [--people 100000] [--latency-messages 200]

In one process, embedded mode (SQLite), the pipeline on a thread:

1. **Enroll**: `--people` Ping events (one person each) through the whole pipeline with a
   journey enabled (Ping -> wait 1 h -> if profile trait -> end). Reported: events/s, and
   the journeys consumer's share of the pipeline's time (its own histogram).
2. **Due steps**: the hand-moved journey clock jumps 2 h; `run_due` takes every due wait,
   evaluates the condition (a profile read each) and finishes the enrollment. Reported:
   due steps/s, against the baseline of a bare SQLite UPDATE of the same rows in the same
   chunks (the least any timer run must write).
3. **Memory**: the process's peak RSS before and after 1-2.
4. **Latency**: a second journey (Order Placed -> email at once, transactional) with the
   wall clock and the background loop at its default tick; `--latency-messages` events
   sent one by one at 20/s; each message's latency is from the 200 of its event to the
   SMTP server (aiosmtpd, in this process) receiving it. Limit (issue 7): p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import banner

from polku.app import create_app
from polku.events import to_iso
from polku.journeys.clock import ManualClock
from polku.journeys.timers import run_due
from polku.ops.metrics import CONSUMER_BATCH_SECONDS
from polku.runtime import Runtime
from polku.settings import Secret, Settings

WAITING = {
    "key": "bench-wait",
    "trigger": {"event": "Ping"},
    "steps": [
        {"id": "wait", "wait": "1h"},
        {
            "id": "gold?",
            "if": [{"field": "profile.traits.tier", "op": "eq", "value": "gold"}],
            "then": "end",
            "else": "end",
        },
    ],
}
INSTANT = {
    "key": "bench-send",
    "trigger": {"event": "Order Placed"},
    "steps": [
        {
            "id": "mail",
            "send": "email",
            "purpose": "transactional",
            "content": {"en": {"subject": "{{ event.order_id }}", "text": "Thanks"}},
        }
    ],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _histogram_sum(consumer: str) -> float:
    for metric in CONSUMER_BATCH_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum") and sample.labels.get("consumer") == consumer:
                return float(sample.value)
    return 0.0


def _all_consumers_sum() -> float:
    total = 0.0
    for metric in CONSUMER_BATCH_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum"):
                total += float(sample.value)
    return total


class Sink:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.arrived[str(message["Subject"])] = time.perf_counter()
        return "250 OK"


def _settle(client: TestClient, runtime: Runtime, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    assert runtime.pipeline is not None
    head = runtime.log.head()
    while runtime.pipeline.position < head:
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not catch up")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--latency-messages", type=int, default=200)
    args = parser.parse_args()
    print(banner("journeys"))
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    data = Path(tempfile.mkdtemp(prefix="polku-bench-journeys-"))
    clock = ManualClock()
    settings = Settings.build(
        data_dir=data,
        pipeline="thread",
        smtp_url=Secret(f"smtp://127.0.0.1:{port}"),
        journeys_tick=3600,  # phases 1-3 drive the timers by hand
    )
    runtime = Runtime.open(settings, clock=clock)
    created = runtime.bootstrap()
    assert created is not None
    key, token = created
    admin = {"Authorization": f"Bearer {token.token}"}
    rss_start = _rss_mb()
    with TestClient(create_app(settings, runtime)) as client:
        client.put("/v1/journeys/settings", json={"holdout_percent": 0}, headers=admin)
        assert (
            client.put(
                "/v1/journeys/bench-wait", json=WAITING, params={"enabled": "true"}, headers=admin
            ).status_code
            == 201
        )
        # 1. enroll
        started = time.perf_counter()
        now_iso = to_iso(clock.now_ms())
        for first in range(0, args.people, 500):
            batch = [
                {
                    "type": "track",
                    "userId": f"p{n}",
                    "event": "Ping",
                    "timestamp": now_iso,
                    "messageId": f"ping-{n}",
                }
                for n in range(first, min(first + 500, args.people))
            ]
            response = client.post("/v1/batch", json={"batch": batch}, auth=(key, ""))
            assert response.status_code == 200, response.text
        _settle(client, runtime)
        enroll_s = time.perf_counter() - started
        with runtime.engine.connect() as conn:
            waiting = conn.execute(
                text("SELECT COUNT(*) FROM journey_enrollments WHERE status = 'active'")
            ).scalar()
        share = _histogram_sum("journeys") / max(_all_consumers_sum(), 1e-9)
        print(
            f"enrolled: {waiting:,} waiting in {enroll_s:.1f} s "
            f"({args.people / enroll_s:,.0f} events/s through every consumer); "
            f"journeys consumer {100 * share:.0f}% of pipeline time"
        )
        rss_enrolled = _rss_mb()
        # 2. due steps, and the baseline of a bare UPDATE of the same rows
        clock.advance(hours=2)
        started = time.perf_counter()
        moved = 0
        while True:
            done = run_due(runtime.engine, runtime.identity, clock)
            moved += done
            if done == 0:
                break
        due_s = time.perf_counter() - started
        with runtime.engine.connect() as conn:
            finished = conn.execute(
                text("SELECT COUNT(*) FROM journey_enrollments WHERE status = 'finished'")
            ).scalar()
        ids = []
        with runtime.engine.connect() as conn:
            ids = [
                r[0] for r in conn.execute(text("SELECT enrollment_id FROM journey_enrollments"))
            ]
        started = time.perf_counter()
        for first in range(0, len(ids), 500):
            with runtime.engine.begin() as conn:
                part = ids[first : first + 500]
                marks = ",".join("?" * len(part))
                conn.exec_driver_sql(
                    "UPDATE journey_enrollments SET due_at = NULL, updated_at = updated_at + 1 "
                    f"WHERE enrollment_id IN ({marks})",
                    tuple(part),
                )
        baseline_s = time.perf_counter() - started
        print(
            f"due steps: {moved:,} waits released ({finished:,} finished) in {due_s:.1f} s = "
            f"{moved / due_s:,.0f} enrollments/s; bare UPDATE of the same rows "
            f"{len(ids) / baseline_s:,.0f} rows/s; ratio {due_s / baseline_s:.1f}x"
        )
        rss_due = _rss_mb()
        print(
            f"memory (peak RSS): {rss_start:.0f} MB at start, {rss_enrolled:.0f} MB after "
            f"enrolling, {rss_due:.0f} MB after the due steps"
        )
    runtime.close()
    # 4. latency with the wall clock and the background loop at its default tick
    data2 = Path(tempfile.mkdtemp(prefix="polku-bench-journeys-latency-"))
    settings = Settings.build(
        data_dir=data2, pipeline="thread", smtp_url=Secret(f"smtp://127.0.0.1:{port}")
    )
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    key, token = created
    admin = {"Authorization": f"Bearer {token.token}"}
    sent: dict[str, float] = {}
    with TestClient(create_app(settings, runtime)) as client:
        client.put("/v1/journeys/settings", json={"holdout_percent": 0}, headers=admin)
        assert (
            client.put(
                "/v1/journeys/bench-send", json=INSTANT, params={"enabled": "true"}, headers=admin
            ).status_code
            == 201
        )
        for n in range(args.latency_messages):
            order = f"o-{n}-{uuid.uuid4().hex[:6]}"
            body = {
                "userId": f"buyer-{n}",
                "event": "Order Placed",
                "properties": {"order_id": order},
                "context": {"traits": {"email": f"buyer-{n}@example.fi"}},
            }
            response = client.post("/v1/track", json=body, auth=(key, ""))
            assert response.status_code == 200
            sent[order] = time.perf_counter()
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while len(sink.arrived) < args.latency_messages and time.monotonic() < deadline:
            time.sleep(0.05)
    runtime.close()
    controller.stop()
    latencies = [1000 * (sink.arrived[o] - t) for o, t in sent.items() if o in sink.arrived]
    if not latencies:
        print("latency: no message arrived")
        return
    p50, p99 = statistics.median(latencies), _percentile(latencies, 0.99)
    print(
        f"trigger to send: {len(latencies)}/{len(sent)} messages; p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms, max {max(latencies):.0f} ms; limit p99 1000 ms "
        f"({p99 / 1000:.2f}x the limit)"
    )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
