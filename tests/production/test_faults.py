"""Faults of the production mode, inflicted on real processes and real servers.

Each test runs real `polku serve` and `polku worker` processes (`processes.py`) against real
PostgreSQL and NATS JetStream, breaks one component in the middle of a load of concurrent
batches with unique messageIds, and then reads PostgreSQL directly: what the API
acknowledged with a 200 must be in `log_events` exactly once, whatever broke. A server that
a test stops is a private one (`servers.py`); the others are the machine's, with a schema
and a stream of the test's own.

Every wait is bounded, and no duration is asserted as a performance figure: a bound only
says how long the test waits before it calls the behaviour missing.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from processes import ApiProcess, Deployment, deployment, wait_until
from servers import PostgresServer, nats_servers, postgres_servers

from conftest import NATS_URL, require_nats
from polku.access.actions import create_write_key
from polku.storage.engine import writing

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SETTLE_SECONDS = 60.0  # the longest a test waits for the workers to copy what was acked


@dataclass
class Reply:
    """One request of the load: when it ran, what it carried and what came back."""

    started: float
    ended: float
    batch: list[dict[str, Any]]
    status: int | None  # None: no HTTP answer at all (refused, reset)
    body: Any = None
    retry_after: str | None = None
    error: str = ""

    @property
    def message_ids(self) -> list[str]:
        return [m["messageId"] for m in self.batch]

    @property
    def acked(self) -> bool:
        """A 200 saying the whole batch was accepted: the promise under test."""
        return (
            self.status == 200
            and isinstance(self.body, dict)
            and self.body.get("accepted") == len(self.batch)
        )


def messages(tag: str, count: int) -> list[dict[str, Any]]:
    """`count` messages with fresh messageIds: anonymous browsing, and now and then a login
    that ties an anonymous id to a user id (their events sit in different partitions, so
    profiles merge across partitions)."""
    batch: list[dict[str, Any]] = []
    for _ in range(count):
        n = uuid.uuid4().int
        person = f"{tag}-{n % 17}"
        if n % 5 == 0:
            message: dict[str, Any] = {
                "type": "identify",
                "userId": f"user-{person}",
                "anonymousId": f"anon-{person}",
                "traits": {"email": f"{person}@kauppa.fi"},
            }
        else:
            message = {
                "type": "track",
                "anonymousId": f"anon-{person}",
                "event": "Product Viewed",
                "properties": {"product_id": f"sku-{n % 101}", "price": 12.9},
            }
        batch.append({**message, "messageId": f"{tag}-{uuid.uuid4().hex}"})
    return batch


def post(client: httpx.Client, batch: list[dict[str, Any]], *, single: bool = False) -> Reply:
    """POST `batch` to /v1/batch (or its one message to /v1/track) and record the reply."""
    started = time.monotonic()
    try:
        if single:
            assert len(batch) == 1
            response = client.post(f"/v1/{batch[0]['type']}", json=batch[0])
        else:
            response = client.post("/v1/batch", json={"batch": batch})
    except httpx.TransportError as exc:
        return Reply(started, time.monotonic(), batch, None, error=repr(exc))
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if single and response.status_code == 200 and isinstance(body, dict):
        body = {"accepted": 1, **body}  # a single message's 200 is that message accepted
    return Reply(
        started,
        time.monotonic(),
        batch,
        response.status_code,
        body,
        response.headers.get("retry-after"),
    )


class Load:
    """Sender threads posting batches of fresh messages to an API as fast as it answers (with
    `pause` between requests), recording every reply, until `stop()`; with `until_cut_off`
    each sender also stops at its first request that gets no HTTP answer (a killed API)."""

    def __init__(
        self,
        api: ApiProcess,
        *,
        threads: int = 3,
        batch: int = 20,
        pause: float = 0.0,
        until_cut_off: bool = False,
        deadline: float = 30.0,
    ) -> None:
        self.api = api
        self.replies: list[Reply] = []  # appended to from several threads (GIL-atomic)
        self._batch = batch
        self._pause = pause
        self._until_cut_off = until_cut_off
        self._deadline = deadline
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        if failure is None:
            self.stop()
        else:  # stop the senders, but let the test's own failure be the one reported
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=60)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not self.running, "a sender thread did not stop"

    def acked(self) -> set[str]:
        return {m for r in list(self.replies) if r.acked for m in r.message_ids}

    def _send(self, sender: int) -> None:
        tag = f"s{sender}-{uuid.uuid4().hex[:6]}"
        ends = time.monotonic() + self._deadline  # a sender never outlives a broken test
        with self.api.client() as client:
            while not self._stop.is_set() and time.monotonic() < ends:
                reply = post(client, messages(tag, self._batch))
                self.replies.append(reply)
                if reply.status is None and self._until_cut_off:
                    return
                self._stop.wait(self._pause)


def unavailable(reply: Reply) -> bool:
    """A 503 with Retry-After and the project's JSON error body: "not now, try again"."""
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    return (
        reply.status == 503
        and reply.retry_after is not None
        and reply.retry_after.isdigit()
        and int(reply.retry_after) >= 1
        and isinstance(error, dict)
        and error.get("code") == "unavailable"
        and bool(error.get("message"))
    )


def describe(replies: list[Reply]) -> list[str]:
    return [f"{r.status} {r.retry_after} {str(r.body)[:200]} {r.error[:200]}" for r in replies]


def assert_exactly_once(dep: Deployment, message_ids: set[str]) -> None:
    """Every one of `message_ids` reaches `log_events`, and none is there twice."""
    assert message_ids, "nothing to check: no request was acknowledged"
    counts = dep.wait_stored(message_ids, SETTLE_SECONDS)
    doubled = {m: n for m, n in counts.items() if n > 1}
    assert doubled == {}, f"{len(doubled)} messageIds stored more than once"


def assert_projected_once(dep: Deployment) -> None:
    """Every copied event was projected exactly once: one profile attribution per event,
    and the unmerged profiles' event counts add up to the events."""
    wait_until(dep.projected, SETTLE_SECONDS, "the consumers caught up with the copies")
    totals = dep.projection_totals()
    assert totals == {
        "events": totals["events"],
        "event_profiles": totals["events"],
        "distinct_event_offsets": totals["events"],
        "profile_event_counts": totals["events"],
    }, totals


@pytest.fixture
def shared_nats() -> str:
    require_nats()
    return NATS_URL


def test_sigkill_of_the_api_under_load_loses_no_acknowledged_event_and_stores_each_once(
    tmp_path: Path, postgres_url: str, shared_nats: str
) -> None:
    with deployment(tmp_path, postgres_url, shared_nats, shared_nats=True) as dep:
        api = dep.api(wait=False)
        dep.ready(api, dep.worker("w1", wait=False))
        with Load(api, threads=4, batch=50, until_cut_off=True) as load:
            wait_until(lambda: len(load.acked()) >= 1000, 30, "1000 events acknowledged")
            api.kill()
            wait_until(lambda: not load.running, 30, "every sender cut off by the kill")
        replies = load.replies
        acked = load.acked()
        # Every reply is a full acknowledgement or no answer at all: nothing in between.
        assert [r for r in replies if not r.acked and r.status is not None] == []
        cut_off = [r for r in replies if r.status is None]
        # Each sender was cut off by the kill, not by its own deadline: the kill came mid-load.
        assert len(cut_off) == 4, describe(cut_off)

        api.start()  # the same process settings and port, after the crash
        with api.client() as client:
            resent = [post(client, r.batch) for r in cut_off]
        assert [r for r in resent if not r.acked] == [], describe(resent)
        resent_ids = {m for r in resent for m in r.message_ids}

        assert_exactly_once(dep, acked | resent_ids)
        # Nothing else arrived: log_events holds exactly what was sent, once each.
        counts = dep.message_counts()
        assert set(counts) == acked | resent_ids
        assert set(counts.values()) == {1}


def test_sigkill_of_a_worker_mid_batch_hands_its_partitions_over_losing_and_doubling_nothing(
    tmp_path: Path, postgres_url: str, shared_nats: str
) -> None:
    with deployment(tmp_path, postgres_url, shared_nats, shared_nats=True) as dep:
        api = dep.api(wait=False)
        survivor = dep.worker("w1", wait=False)
        victim = dep.worker("w2", wait=False)
        dep.ready(api, survivor, victim)
        partitions = set(range(dep.partitions))

        def split() -> dict[int, str | None] | None:
            owners = dep.owners()
            shares = sorted(list(owners.values()).count(w) for w in ("w1", "w2"))
            return owners if shares == [2, 2] else None

        owners = wait_until(split, 30, "the two workers hold two partitions each")
        held = {p for p, owner in owners.items() if owner == victim.name}

        with Load(api, threads=3, batch=20, pause=0.05) as load:
            # Kill the victim while its partitions' copies into PostgreSQL keep moving: one
            # of its checkpoints advanced at two successive looks.
            seen = [dep.archived()]

            def moving() -> bool:
                seen.append(dep.archived())
                return sum(any(b[p] > a[p] for p in held) for a, b in pairwise(seen[-3:])) == 2

            wait_until(moving, 30, f"{victim.name} copying its partitions {sorted(held)}")
            victim.kill()

            def taken_over() -> bool:
                return set(dep.owners().values()) == {survivor.name}

            # Its leases lapse after 2 s; the survivor's next heartbeats take them.
            wait_until(taken_over, 8 * dep.lease_seconds, "the survivor took every partition")
            # The survivor keeps copying new events of the partitions it took over.
            after = dep.archived()
            wait_until(
                lambda: all(dep.archived()[p] > after[p] for p in held),
                30,
                f"{survivor.name} copying the partitions it took over",
            )
        assert dep.live_workers() == {survivor.name: ",".join(str(p) for p in sorted(partitions))}
        assert survivor.running
        assert [r for r in load.replies if not r.acked] == [], describe(load.replies)

        assert_exactly_once(dep, load.acked())
        assert set(dep.message_counts()) == load.acked()
        assert_projected_once(dep)


def test_while_nats_is_down_the_api_answers_503_retry_after_and_recovers_by_itself(
    tmp_path: Path, postgres_url: str
) -> None:
    with nats_servers(tmp_path) as start_nats:
        server = start_nats()
        with deployment(tmp_path, postgres_url, server.url, shared_nats=False) as dep:
            api = dep.api(wait=False)
            dep.ready(api, dep.worker("w1", wait=False))
            with api.client() as client, Load(api, threads=2, batch=10, pause=0.05) as load:
                wait_until(lambda: len(load.acked()) >= 100, 30, "events acknowledged")
                server.stop()  # a clean shutdown: the API's connection drops
                down = time.monotonic()
                # One at a time now, single messages and batches, all while nothing listens.
                refused = [
                    post(client, messages("down", 1 + n % 2 * 4), single=n % 2 == 0)
                    for n in range(30)
                ]
                assert [r for r in refused if not unavailable(r)] == [], describe(refused)
                assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200
                time.sleep(max(0.0, down + 3.0 - time.monotonic()))  # the load keeps trying
                up = time.monotonic()
                server.start()  # the same port and store: the stream is still there

                recovering: list[Reply] = []

                def accepted() -> bool:
                    recovering.append(post(client, messages("back", 1), single=True))
                    return recovering[-1].acked

                wait_until(accepted, 30, "the API accepting events again", every=0.2)
                back = len(load.acked())
                wait_until(lambda: len(load.acked()) >= back + 100, 30, "the load acknowledged")
            assert api.running and api.starts == 1  # it recovered by itself, unrestarted

            replies = load.replies + refused + recovering
            # Never a 500, never a dropped connection: accepted, or 503 + Retry-After ...
            assert [r for r in replies if not (r.acked or unavailable(r))] == [], describe(replies)
            # ... and never a 2xx while no NATS server ran (there was nowhere to store it).
            outage = [r for r in replies if r.started >= down and r.ended <= up]
            assert [r for r in outage if r.acked] == [], describe(outage)
            assert any(r.acked for r in load.replies if r.started > up)

            acked = {m for r in replies if r.acked for m in r.message_ids}
            assert_exactly_once(dep, acked)
            # The refusals told the truth: none of those events was stored.
            stored = dep.message_counts()
            assert {m for r in outage for m in r.message_ids} & set(stored) == set()
            assert_projected_once(dep)


def _database(server: PostgresServer) -> str:
    with psycopg.connect(server.conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE DATABASE polku")
    return server.url.rsplit("/", 1)[0] + "/polku"


def _create_write_key(dep: Deployment) -> str:
    with writing(dep.engine) as conn:
        return create_write_key(conn, "default", "fault-probe")


OUTAGE_SECONDS = 6.0  # longer than the API caches a write key (5 s)


def test_a_postgres_restart_under_load_loses_nothing_and_the_worker_catches_up_by_itself(
    tmp_path: Path, shared_nats: str
) -> None:
    with postgres_servers(tmp_path) as start_postgres:
        postgres = start_postgres()
        url = _database(postgres)
        with deployment(tmp_path, url, shared_nats, shared_nats=True) as dep:
            api = dep.api(wait=False)
            worker = dep.worker("w1", wait=False)
            dep.ready(api, worker)
            probe_key = _create_write_key(dep)
            with Load(api, threads=3, batch=20, pause=0.05) as load:
                wait_until(lambda: sum(dep.archived().values()) > 0, 30, "events copied")
                with httpx.Client(base_url=api.url, auth=(probe_key, ""), timeout=30) as probe:
                    # The API looks write keys up in PostgreSQL and caches them for a few
                    # seconds: this lookup is fresh when PostgreSQL goes down.
                    assert post(probe, messages("probe", 1), single=True).acked
                    postgres.stop("immediate")  # like a crash; recovery from the WAL
                    down = time.monotonic()
                    during = post(probe, messages("probe", 1), single=True)
                    outage_ends = down + OUTAGE_SECONDS
                    time.sleep(max(0.0, outage_ends - time.monotonic()))
                    up = time.monotonic()
                postgres.start()
                restarted = time.monotonic()
                time.sleep(1.0)  # more load once it is back
            dep.engine.dispose()  # the test's own connections died with the server

            replies = load.replies
            # What holds while PostgreSQL is down: the API appends to NATS for a write key
            # it has cached, so a known source keeps sending ...
            assert during.acked, describe([during])
            in_outage = [r for r in replies if r.started >= down and r.ended <= up]
            assert in_outage, "no request ran entirely inside the outage"
            # ... and every request is either accepted or refused with 503 + Retry-After
            # (once the cached key expires): never a 500, never an unanswered request.
            assert [r for r in replies if not (r.acked or unavailable(r))] == [], describe(replies)
            assert any(r.acked for r in replies if r.started > restarted)

            assert_exactly_once(dep, load.acked() | set(during.message_ids))
            assert_projected_once(dep)
            # The worker noticed, backed off and came back by itself, still the same process.
            assert worker.running and worker.starts == 1
            output = worker.output()
            backing_off = re.findall(
                r"(?:starting again from the checkpoint in|retry in) (\d+\.\d) s", output
            )
            assert len(backing_off) >= 2, output[-5000:]
            assert len(set(backing_off)) >= 2, backing_off  # the waits grew: a backoff
            # It says why in one line, without the SQL and its parameters: no customer data.
            assert "[SQL:" not in output and "[parameters:" not in output, output[-5000:]
            assert "@kauppa.fi" not in output, output[-5000:]
