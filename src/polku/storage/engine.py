"""Create the SQLAlchemy engine for the configured backend and translate driver errors.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer and the
writer waits for the other writers instead of failing; PostgreSQL uses psycopg 3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from polku.errors import Unavailable
from polku.settings import Settings

__all__ = ["describe_error", "make_engine", "translate_errors", "writing"]


def make_engine(settings: Settings, *, pool_size: int = 10) -> Engine:
    """The engine for `settings.sqlalchemy_url`, with SQLite tuned for WAL and durability.

    `pool_size`: PostgreSQL connections kept open (as many again may open under load); a
    worker needs about one per partition it holds."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy manage transactions; issue BEGIN ourselves (see _begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A writing transaction (see `writing`) takes the write lock up front with
            # IMMEDIATE: two writers that both started as readers cannot deadlock, and
            # busy_timeout applies. Readers use a plain deferred BEGIN and never block.
            if conn.get_execution_options().get("polku_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn database outages into `Unavailable` (503 + Retry-After) with a useful message."""
    try:
        yield
    except OperationalError as exc:
        raise Unavailable(
            f"The database is unavailable while {action}: {exc.orig!s}".strip(),
            hint="Retry after a few seconds; check that the database server is running.",
        ) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise Unavailable(
                f"Lost the database connection while {action}.",
                hint="Retry after a few seconds.",
            ) from exc
        raise
    except SQLAlchemyError:
        raise


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that will write: committed on success, rolled back on error.

    On SQLite it begins with ``BEGIN IMMEDIATE`` so concurrent writers queue on the
    busy timeout instead of failing with "database is locked" at commit time.
    """
    with engine.connect() as conn:
        conn.execution_options(polku_write=True)
        with conn.begin():
            yield conn


def describe_error(exc: BaseException) -> str:
    """A failure as one log line, without SQLAlchemy's SQL and parameters.

    SQLAlchemy's text of a driver error appends the statement and its bound parameters
    (customers' emails, user ids) over several lines; logs keep the driver's own message."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = str(exc)
    return " ".join(text.split())
