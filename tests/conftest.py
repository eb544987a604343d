"""Fixtures shared by the whole suite: a fresh Polku on SQLite and on the real PostgreSQL.

Each test gets fresh state: a new SQLite file in its tmp_path, or a new PostgreSQL schema in
the database named by POLKU_TEST_POSTGRES_URL (default: the local server's `test` database),
dropped afterwards, already migrated to the newest revision (each test process migrates once
and copies: `schema_templates.py`; `blank_settings` gives an untouched database). Under
CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from polku.app import create_app
from polku.runtime import Runtime
from polku.settings import Settings
from schema_templates import copy_sqlite_template, replay_postgres_template

POSTGRES_URL = os.environ.get(
    "POLKU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NATS_URL = os.environ.get("POLKU_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # the reason is shown in the skip or the failure
        return str(exc).splitlines()[0]
    return None


def require_postgres() -> None:
    problem = _postgres_problem()
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(message)


@functools.cache
def _nats_problem() -> str | None:
    """Why the NATS tests cannot run (None when they can); asked once per test process."""
    errors: list[str] = []

    async def record(exc: Exception) -> None:
        errors.append(str(exc).strip() or type(exc).__name__)

    async def probe() -> None:
        nc = await asyncio.wait_for(
            nats.connect(
                NATS_URL,
                connect_timeout=2,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=record,
            ),
            timeout=3,
        )
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # the reason is shown in the skip or the failure
        return errors[-1] if errors else str(exc).strip() or type(exc).__name__
    return None


def require_nats() -> None:
    """Skip without NATS JetStream at POLKU_TEST_NATS_URL; fail instead under CI=true."""
    problem = _nats_problem()
    if problem is not None:
        message = f"NATS JetStream at {NATS_URL} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the NATS tests must run)")
        pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a brand-new schema, dropped after the test."""
    require_postgres()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return Settings.build(database_url=url, data_dir=tmp_path, pipeline="thread")
    return Settings.build(data_dir=tmp_path, pipeline="thread")


@pytest.fixture(params=BACKENDS)
def blank_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a database nothing has touched yet, once on SQLite and once on
    PostgreSQL: for tests of the migrations themselves."""
    return _fresh_settings(request, tmp_path)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh Polku, once on SQLite and once on PostgreSQL: an empty database
    migrated to the newest revision (a copy of the test process's migrated template)."""
    fresh = _fresh_settings(request, tmp_path)
    if fresh.is_sqlite:
        copy_sqlite_template(Path(fresh.data_dir))
    else:
        replay_postgres_template(POSTGRES_URL, fresh.database_url.reveal())
    return fresh


@dataclass
class Polku:
    """A running Polku for one test: its runtime, an HTTP client and its credentials."""

    runtime: Runtime
    client: TestClient
    write_key: str
    admin_token: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def auth(self) -> tuple[str, str]:
        return (self.write_key, "")

    def send(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.client.post(path, json=body, auth=self.auth, **kwargs)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the pipeline has projected everything in the log."""
        deadline = time.monotonic() + timeout
        head = self.runtime.log.head()
        while self.runtime.pipeline.position < head:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"pipeline stuck at {self.runtime.pipeline.position}, log head {head}"
                )
            time.sleep(0.01)


@pytest.fixture
def polku(settings: Settings) -> Iterator[Polku]:
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    key, token = created
    app = create_app(settings, runtime)
    try:
        with TestClient(app) as client:
            yield Polku(runtime, client, key, token.token)
    finally:
        runtime.close()
