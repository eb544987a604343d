"""Liveness and readiness through the HTTP API, with real stores that work, fail and hang."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from polku.app import create_app
from polku.runtime import Runtime
from polku.settings import Settings

if TYPE_CHECKING:
    from conftest import Polku  # the `polku` fixture of tests/conftest.py


def test_healthz_and_readyz_when_everything_answers(polku: Polku) -> None:
    alive = polku.client.get("/healthz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "alive"}

    ready = polku.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["store"]["status"] == "ok"
    assert body["checks"]["log"]["status"] == "ok"
    assert "Retry-After" not in ready.headers

    # The older endpoint that tools read keeps its shape.
    health = polku.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port bound to a socket that never listens: every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _assert_not_ready(client: TestClient, failed_check: str) -> dict[str, object]:
    response = client.get("/readyz")
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"][failed_check]["status"] == "failed"
    assert body["checks"][failed_check]["error"]
    assert "\n" not in body["checks"][failed_check]["error"]  # one line, for logs and UIs
    error = body["error"]
    assert error["code"] == "not_ready"
    assert error["hint"]
    assert isinstance(error["message"], str)
    return body


def test_readyz_is_503_while_postgres_is_unreachable(tmp_path: Path, closed_port: int) -> None:
    settings = Settings.build(
        database_url=f"postgresql+psycopg://polku@127.0.0.1:{closed_port}/polku",
        data_dir=tmp_path,
        pipeline="off",
    )
    runtime = Runtime.open(settings, migrate=False)
    try:
        with TestClient(create_app(settings, runtime)) as client:
            body = _assert_not_ready(client, "store")
            error = body["error"]
            assert isinstance(error, dict)
            assert "state store" in error["message"]
            assert "refused" in error["message"].lower()
            # Liveness never asks the database: the process is fine, only its backend is not.
            alive = client.get("/healthz")
            assert alive.status_code == 200
            assert alive.json() == {"status": "alive"}
    finally:
        runtime.close()


def test_readyz_turns_503_when_the_sqlite_file_goes_away(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.build(data_dir=data_dir, pipeline="off")
    runtime = Runtime.open(settings)
    try:
        with TestClient(create_app(settings, runtime)) as client:
            assert client.get("/readyz").status_code == 200
            runtime.engine.dispose()
            shutil.rmtree(data_dir)  # the next connection cannot open the database file

            body = _assert_not_ready(client, "store")
            checks = body["checks"]
            assert isinstance(checks, dict)
            assert checks["store"]["status"] == "failed"
            # The log has a file and an engine of its own (polku-log.db): its open connection
            # may still read the removed file, so its check may pass; the store's decides.
            assert client.get("/healthz").status_code == 200
    finally:
        runtime.close()


def test_a_hung_database_cannot_hang_the_probe(tmp_path: Path) -> None:
    """A server that accepts connections and never answers: the probe answers within its
    timeout, and a second probe waits on the same stuck check instead of starting another."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshakes; nothing ever reads or replies
    port = listener.getsockname()[1]
    settings = Settings.build(
        database_url=f"postgresql+psycopg://polku@127.0.0.1:{port}/polku",
        data_dir=tmp_path,
        pipeline="off",
        readiness_timeout=0.3,
    )
    runtime = Runtime.open(settings, migrate=False)
    try:
        with TestClient(create_app(settings, runtime)) as client:
            try:
                started = time.monotonic()
                first = _assert_not_ready(client, "store")
                second = _assert_not_ready(client, "store")
                elapsed = time.monotonic() - started
                for body in (first, second):
                    checks = body["checks"]
                    assert isinstance(checks, dict)
                    assert "no answer within 0.3 s" in checks["store"]["error"]
                assert "has been waiting" in second["checks"]["store"]["error"]  # type: ignore[index]
                assert elapsed < 5, f"two probes took {elapsed:.1f} s"
            finally:
                # Closing the listener resets the stuck connections, so their threads end.
                listener.close()
            assert client.get("/healthz").status_code == 200
    finally:
        listener.close()
        runtime.close()
