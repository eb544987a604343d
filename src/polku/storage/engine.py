"""Create the SQLAlchemy engine for the configured backend and translate driver errors.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer and the
writer waits for the other writers instead of failing; PostgreSQL uses psycopg 3.

On SQLite the log lives in a file of its own next to the state database (``polku.db`` and
``polku-log.db``): SQLite admits one writer per file, and with both in one file the log's
appends (durable, on every request) and the pipeline's projection commits queued behind each
other, every commit invalidated the other process's page cache, and the log's writer ran the
WAL checkpoints of the projections' pages. The state engine attaches the log file read-only
(schema ``log``), so queries that join events to projections work unchanged and its write
transactions never lock the log; only `log_engine` (used by `polku.log.sql.SqlLog`) writes it.
No transaction writes both files, so WAL commits stay atomic: the log is the truth and the
projections can be rebuilt from it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from polku.errors import Unavailable
from polku.settings import Settings

__all__ = [
    "describe_error",
    "log_engine",
    "log_file",
    "make_engine",
    "snapshot",
    "translate_errors",
    "writing",
]

logger = logging.getLogger(__name__)

# state engine -> the engine that writes its log file (SQLite with a file database only)
_LOG_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def log_file(database: str | None) -> Path | None:
    """The log's own SQLite file for the state database file `database` (``polku.db`` ->
    ``polku-log.db`` beside it); None for an in-memory database, which keeps the log."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return path.with_name(f"{path.stem}-log{path.suffix}")


def log_engine(engine: Engine) -> Engine:
    """The engine that appends to the log of `engine`'s database: on SQLite the log file's
    own engine (see the module docstring), otherwise `engine` itself."""
    return _LOG_ENGINES.get(engine, engine)


def make_engine(settings: Settings, *, pool_size: int = 10) -> Engine:
    """The engine for `settings.sqlalchemy_url`, with SQLite tuned for WAL and durability.

    `pool_size`: PostgreSQL connections kept open (as many again may open under load); a
    worker needs about one per partition it holds."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = _sqlite_engine(url, settings.sqlite_synchronous, pool_size=8)
        database = engine.url.database
        log_path = log_file(database)
        if log_path is None:
            return engine
        # The file must exist (in WAL mode) before a connection can attach it read-only.
        created = sqlite3.connect(log_path)
        try:
            created.execute("PRAGMA journal_mode=WAL")
        finally:
            created.close()
        target = "file:" + urllib.parse.quote(str(log_path.resolve())) + "?mode=ro"

        @event.listens_for(engine, "connect")
        def _attach_log(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("ATTACH DATABASE ? AS log", (target,))

        log = _LOG_ENGINES[engine] = _sqlite_engine(
            f"sqlite:///{log_path}", settings.sqlite_synchronous, pool_size=4
        )
        event.listen(engine, "engine_disposed", lambda _engine: log.dispose())
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_engine(url: str, synchronous: str, *, pool_size: int) -> Engine:
    # uri=True lets the state engine attach the log file with a read-only URI; a plain path
    # still opens as a file name. LIFO: the connection used last (with its warm page cache)
    # is the one handed out next.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30, "uri": True},
        pool_size=pool_size,
        max_overflow=8,
        pool_use_lifo=True,
    )

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
        # Checkpoints run in the background (`_checkpoint_in_background`), not inside a
        # commit; the automatic one stays as a backstop for a WAL that grew very large.
        cursor.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A writing transaction (see `writing`) takes the write lock up front with
        # IMMEDIATE: two writers that both started as readers cannot deadlock, and
        # busy_timeout applies. Readers use a plain deferred BEGIN and never block.
        # (IMMEDIATE locks every attached database that is writable: the state engine
        # attaches the log read-only, so its writers never lock the log.)
        if conn.get_execution_options().get("polku_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    disposed = threading.Event()
    event.listen(engine, "engine_disposed", lambda _engine: disposed.set())
    threading.Thread(
        target=_checkpoint_in_background,
        args=(weakref.ref(engine), disposed),
        name="polku-wal-checkpoint",
        daemon=True,
    ).start()
    return engine


_AUTOCHECKPOINT_PAGES = 50_000  # ~200 MB of WAL (SQLite's default: 1,000 pages)
_CHECKPOINT_EVERY = 0.25  # seconds


def _checkpoint_in_background(ref: weakref.ref[Engine], disposed: threading.Event) -> None:
    """Copy committed WAL pages into the database file every `_CHECKPOINT_EVERY` seconds.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages: that
    commit then copies and syncs megabytes, which on the log's writer thread delayed every
    request of its group, and in the pipeline stalled projection. A PASSIVE checkpoint never
    blocks readers or writers, so here it costs nobody a wait. The thread ends when its
    engine is disposed (closing a runtime does) or collected (it holds only a weak
    reference): a thread left polling a closed engine cost every later test in the process
    four connection attempts a second.
    """
    while not disposed.wait(_CHECKPOINT_EVERY):
        engine = ref()
        if engine is None:
            return
        try:
            raw = engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA main.wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
            finally:
                raw.close()
        except Exception:  # the database went away (tests' folders, shutdown): try later
            logger.debug("background WAL checkpoint failed", exc_info=True)
        del engine


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
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one moment of the database.

    SQLite's deferred transaction already does (its snapshot starts at the first read);
    PostgreSQL's default (READ COMMITTED) takes a new snapshot per statement, so a read of
    several statements could straddle another transaction's commit and see half of it
    (a cart's owner before the pipeline moved it, its lines after): REPEATABLE READ there.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


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
