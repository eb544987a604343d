"""The private NATS and PostgreSQL servers of `servers.py` survive the faults tests inflict.

The fault tests of the production mode stop, kill and restart these servers under a running
Polku; they are only as good as these guarantees: the same URL before and after, the data
still there, connections refused while down, and clients that reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig
from servers import NatsServer, PostgresServer, nats_servers, postgres_servers
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

pytestmark = pytest.mark.slow


async def _ignore(exc: Exception) -> None:
    pass  # the client reports the server's absence; here it is the point of the test


async def _connect_once(url: str) -> None:
    # max_reconnect_attempts=0 would retry forever (nats-py 2.16): one attempt, no wait.
    connecting = nats.connect(
        url,
        connect_timeout=1,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0,
        error_cb=_ignore,
    )
    nc = await asyncio.wait_for(connecting, timeout=5)
    await nc.close()


def _refused_within(seconds: float, url: str) -> float:
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        asyncio.run(_connect_once(url))
    elapsed = time.monotonic() - started
    assert not isinstance(caught.value, AssertionError)
    assert elapsed < seconds, f"refusal took {elapsed:.2f} s: {caught.value!r}"
    return elapsed


def test_a_stream_survives_stop_and_start_and_the_client_reconnects(tmp_path: Path) -> None:
    with nats_servers(tmp_path) as start:
        server = start()
        url = server.url

        async def scenario() -> tuple[int, int, int]:
            disconnected, reconnected = asyncio.Event(), asyncio.Event()

            async def on_disconnect() -> None:
                disconnected.set()

            async def on_reconnect() -> None:
                reconnected.set()

            nc = await nats.connect(
                url,
                connect_timeout=1,
                reconnect_time_wait=0.1,
                max_reconnect_attempts=-1,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=_ignore,
            )
            try:
                js = nc.jetstream(timeout=2)
                await js.add_stream(StreamConfig(name="FAULTS", subjects=["faults.>"]))
                for n in range(5):
                    await js.publish("faults.a", b"%d" % n)

                await asyncio.to_thread(server.stop)
                await asyncio.wait_for(disconnected.wait(), 5)
                await asyncio.to_thread(server.start)
                await asyncio.wait_for(reconnected.wait(), 5)

                ack = await js.publish("faults.a", b"5")
                state = (await js.stream_info("FAULTS")).state
                last = await js.get_msg("FAULTS", 5)
            finally:
                await nc.close()
            return ack.seq, state.messages, int(last.data or b"-1")

        assert asyncio.run(asyncio.wait_for(scenario(), 20)) == (6, 6, 4)
        assert server.url == url


def test_a_stopped_or_killed_server_refuses_fast_and_keeps_acknowledged_messages(
    tmp_path: Path,
) -> None:
    with nats_servers(tmp_path) as start:
        server = start()

        async def publish(subject: str, count: int) -> int:
            nc = await nats.connect(server.url, connect_timeout=1, allow_reconnect=False)
            try:
                js = nc.jetstream(timeout=2)
                await js.add_stream(StreamConfig(name="FAULTS", subjects=["faults.>"]))
                for n in range(count):
                    ack = await js.publish(subject, b"%d" % n)
                return ack.seq
            finally:
                await nc.close()

        async def stored() -> int:
            nc = await nats.connect(server.url, connect_timeout=1, allow_reconnect=False)
            try:
                return (await nc.jetstream(timeout=2).stream_info("FAULTS")).state.messages
            finally:
                await nc.close()

        assert asyncio.run(publish("faults.a", 100)) == 100
        server.stop()
        _refused_within(2.0, server.url)
        server.start()
        assert asyncio.run(stored()) == 100

        # SIGKILL right after the acknowledgements: JetStream has written them already.
        assert asyncio.run(publish("faults.b", 100)) == 200
        server.kill()
        _refused_within(2.0, server.url)
        server.start()
        assert asyncio.run(stored()) == 200


def test_a_committed_row_survives_restart_and_connections_fail_while_stopped(
    tmp_path: Path,
) -> None:
    with postgres_servers(tmp_path) as start:
        server = start()
        engine = create_engine(server.url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE faults (n integer PRIMARY KEY)"))
                conn.execute(text("INSERT INTO faults VALUES (1), (2)"))
            port = server.port

            server.restart()
            with engine.begin() as conn:  # the pooled connection died: pre-ping replaces it
                assert conn.execute(text("SELECT n FROM faults ORDER BY n")).scalars().all() == [
                    1,
                    2,
                ]
                conn.execute(text("INSERT INTO faults VALUES (3)"))

            server.stop()
            started = time.monotonic()
            with pytest.raises(OperationalError, match="refused"):
                engine.connect().close()
            assert time.monotonic() - started < 2.0

            server.start()
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM faults")).scalar() == 3
            assert server.port == port
        finally:
            engine.dispose()


def test_an_immediate_stop_is_recovered_from_wal_without_losing_commits(tmp_path: Path) -> None:
    with postgres_servers(tmp_path) as start:
        server = start()
        engine = create_engine(server.url, connect_args={"connect_timeout": 2})
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE faults (n integer PRIMARY KEY)"))
            for n in range(50):  # one transaction each, the last one just before the stop
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO faults VALUES (:n)"), {"n": n})
            engine.dispose()

            server.stop(mode="immediate")
            server.start()
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM faults")).scalar() == 50
        finally:
            engine.dispose()
        assert "automatic recovery in progress" in server.logs()  # it really was a crash


def test_a_missing_binary_skips_but_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-binary"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no NATS server"):
        NatsServer(tmp_path / "store", tmp_path / "nats.log", binary=missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        NatsServer(tmp_path / "store", tmp_path / "nats.log", binary=missing)
    with pytest.raises(pytest.fail.Exception, match="no PostgreSQL"):
        PostgresServer(tmp_path / "data", tmp_path / "pg.log", bindir=tmp_path)
