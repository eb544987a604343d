"""The SQL log on SQLite keeps its own file: projection writes never hold up an append, and a
database from before the split (revision 0001) keeps every event when it is upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from polku.events import NewEvent
from polku.log.sql import SqlLog
from polku.settings import Settings
from polku.storage.engine import log_file, make_engine, writing
from polku.storage.migrate import upgrade


def _event(n: int) -> NewEvent:
    return NewEvent(
        workspace_id="ws",
        message_id=f"m-{n}",
        type="track",
        event="Product Viewed",
        partition_key=f"anon-{n % 3}",
        received_at=1_000 + n,
        timestamp=1_000 + n,
        payload=b'{"type":"track","n":%d}' % n,
        source_id="src",
    )


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


def test_the_log_lives_in_its_own_file_and_joins_still_work(tmp_path: Path) -> None:
    engine = make_engine(Settings.build(data_dir=tmp_path))
    upgrade(engine)
    log = SqlLog(engine)
    try:
        assert log.append_sync([_event(1), _event(2)]) == 2
        assert "log_events" in _tables(tmp_path / "polku-log.db")
        assert "log_events" not in _tables(tmp_path / "polku.db")
        with engine.connect() as conn:  # the state engine reads the attached log
            rows = conn.execute(text('SELECT message_id FROM log_events ORDER BY "offset"'))
            assert [r[0] for r in rows] == ["m-1", "m-2"]
    finally:
        log.close()
        engine.dispose()


def test_an_append_does_not_wait_for_an_open_projection_transaction(tmp_path: Path) -> None:
    engine = make_engine(Settings.build(data_dir=tmp_path))
    upgrade(engine)
    log = SqlLog(engine)
    try:
        with writing(engine) as conn:  # holds the state file's write lock, as the pipeline does
            conn.execute(text("INSERT INTO log_checkpoints (consumer, \"offset\") VALUES ('t', 0)"))
            # On one shared file this append would wait for the lock until the busy
            # timeout and fail; with the log in its own file it commits at once.
            assert log.append_sync([_event(1)]) == 1
            with pytest.raises(OperationalError, match="readonly"):
                conn.execute(text("DELETE FROM log_events"))  # the state engine cannot write it
    finally:
        log.close()
        engine.dispose()


def test_upgrading_a_database_with_the_log_inside_moves_every_event(tmp_path: Path) -> None:
    engine = make_engine(Settings.build(data_dir=tmp_path))
    upgrade(engine, "0001")  # before the split: log_events in polku.db
    with writing(engine) as conn:
        for n in range(1, 6):
            e = _event(n)
            conn.execute(
                text(
                    "INSERT INTO main.log_events (workspace_id, source_id, message_id, type, "
                    'event, partition_key, received_at, "timestamp", payload) VALUES '
                    "(:w, :s, :m, :t, :e, :k, :r, :ts, :p)"
                ),
                {
                    "w": e.workspace_id,
                    "s": e.source_id,
                    "m": e.message_id,
                    "t": e.type,
                    "e": e.event,
                    "k": e.partition_key,
                    "r": e.received_at,
                    "ts": e.timestamp,
                    "p": e.payload,
                },
            )
    upgrade(engine)
    log = SqlLog(engine)
    try:
        assert "log_events" not in _tables(tmp_path / "polku.db")
        assert [e.message_id for e in log.read(0, 100)] == [f"m-{n}" for n in range(1, 6)]
        assert log.append_sync([_event(3), _event(6)]) == 6  # m-3 deduplicated, m-6 new
    finally:
        log.close()
        engine.dispose()


def test_only_a_file_database_gets_a_log_file() -> None:
    assert log_file("/data/polku.db") == Path("/data/polku-log.db")
    assert log_file(":memory:") is None
    assert log_file(None) is None
