"""The migrations build exactly the schema the code's tables describe, on both backends.

Every package declares its tables in SQLAlchemy Core and ships an Alembic migration for
them; this catches the two drifting apart (a column added to `tables.py` and forgotten in
the migration, an index named differently), which would otherwise surface as an error in
production only.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select

from polku.log.tables import log_events
from polku.recommend.tables import models
from polku.settings import Settings
from polku.storage.engine import log_engine, make_engine
from polku.storage.migrate import alembic_config, upgrade
from polku.storage.schema import metadata


def _differences(engine: Engine, *, log: bool | None = None) -> list[Any]:
    """What differs between `metadata` and the database; `log` True: the log table only,
    False: everything but it, None: everything."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        only_on = getattr(getattr(obj, "_ddl_if", None), "dialect", None)  # `ddl_if(dialect=)`
        if only_on is not None and only_on != engine.dialect.name:
            return False
        table = obj if kind == "table" else getattr(obj, "table", None)
        if log is None or table is None:
            return True
        return (table.name == log_events.name) == log

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": False,
                "include_object": include,
            },
        )
        return list(compare_metadata(context, metadata))


def _all_differences(engine: Engine, settings: Settings) -> list[Any]:
    if settings.is_sqlite:  # the log lives in a file of its own (`polku.storage.engine`)
        return _differences(engine, log=False) + _differences(log_engine(engine), log=True)
    return _differences(engine)


def test_one_head() -> None:
    """New migrations revise the newest one, so the history stays one line."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads {heads}: revise the newest one"


def test_migrated_schema_matches_the_tables(blank_settings: Settings) -> None:
    settings = blank_settings
    engine = make_engine(settings)
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent
        differences = _all_differences(engine, settings)
    finally:
        engine.dispose()
    assert differences == []


def test_the_suites_migrated_copies_match_the_tables_at_the_head(settings: Settings) -> None:
    """The copied or replayed template (`tests/schema_templates.py`) that every other test
    starts from is the schema the migrations build, at their head revision."""
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
        differences = _all_differences(engine, settings)
    finally:
        engine.dispose()
    assert current == tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert differences == []


def test_the_models_summary_moves_before_the_payload_and_keeps_the_row(
    blank_settings: Settings,
) -> None:
    """0018: on SQLite the stored models are rebuilt with `summary` before `payload` (so
    reading the status does not walk the payload's pages); the row survives both ways."""
    engine = make_engine(blank_settings)
    row = {"workspace_id": "ws", "version": 3, "trained_at": 5, "payload": b"\x00" * 300_000}
    try:
        upgrade(engine, "0017_dead_letter_hints")
        with engine.begin() as conn:
            conn.execute(models.insert().values(**row, summary='{"items": 1}'))
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(select(models)).one()._mapping == {**row, "summary": '{"items": 1}'}
            if blank_settings.is_sqlite:
                order = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(recommend_models)")]
                assert order.index("summary") < order.index("payload")
        config = alembic_config(engine)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0017_dead_letter_hints")
        with engine.connect() as conn:
            assert conn.execute(select(models.c.version)).scalar_one() == 3
    finally:
        engine.dispose()
