"""Migrated databases for the tests, made once per test process and then copied.

Running the Alembic migrations (18 of them, ~160 statements) for every test cost ~0.55 s on
PostgreSQL and ~0.1 s on SQLite, a quarter of the suite's time. Each process (each xdist
worker) now migrates once and gives every test a copy:

- SQLite: the migrated files (``polku.db`` and the log's ``polku-log.db``) are copied into
  the test's data directory.
- PostgreSQL: the statements the migrations ran in a template schema are recorded and run
  again, as one script, in the test's new schema. The reflection the migrations do reads
  nothing back on an empty schema, so a replay builds what the migrations build; the
  migrations test (`tests/storage/test_migrations.py`) still runs them on blank databases.

`Runtime.open` then finds the schema at its head revision and migrates nothing.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from polku.settings import Settings
from polku.storage.engine import make_engine
from polku.storage.migrate import upgrade

__all__ = ["copy_sqlite_template", "replay_postgres_template"]

_lock = threading.Lock()
_sqlite_dir: Path | None = None
_postgres_script: list[tuple[str, Any]] | None = None


def copy_sqlite_template(data_dir: Path) -> None:
    """Put a migrated, empty embedded database into `data_dir`."""
    global _sqlite_dir
    with _lock:
        if _sqlite_dir is None:
            made = Path(tempfile.mkdtemp(prefix="polku-template-"))
            engine = make_engine(Settings.build(data_dir=made, pipeline="off"))
            try:
                upgrade(engine)
            finally:
                engine.dispose()
            for path in made.glob("*.db"):  # fold each WAL into its file
                with sqlite3.connect(path) as conn:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
            _sqlite_dir = made
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in _sqlite_dir.glob("*.db"):
        shutil.copyfile(path, data_dir / path.name)


def _record(server_url: str) -> list[tuple[str, Any]]:
    """The statements that migrate a blank schema, in order (reads left out)."""
    schema = "tmpl_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    statements: list[tuple[str, Any]] = []
    engine: Engine | None = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_engine(f"{server_url}{_options(server_url, schema)}")

        @event.listens_for(engine, "before_cursor_execute")
        def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "SHOW")):
                return
            if schema in statement:
                raise AssertionError(f"a migration names its schema: {statement[:200]}")
            statements.append((statement, params))

        upgrade(engine)
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return statements


def replay_postgres_template(server_url: str, url: str) -> None:
    """Migrate the blank schema that `url`'s search_path names, as the migrations would."""
    global _postgres_script
    with _lock:
        if _postgres_script is None:
            _postgres_script = _record(server_url)
        script = _postgres_script
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            plain: list[str] = []
            for statement, params in script:
                if params:
                    if plain:  # several statements in one round trip (no parameters)
                        driver.execute(";\n".join(plain))
                        plain = []
                    conn.exec_driver_sql(statement, params)
                else:
                    plain.append(statement)
            if plain:
                driver.execute(";\n".join(plain))
    finally:
        engine.dispose()


def _options(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{separator}options=-csearch_path%3D{schema}"
