"""Acceptance tests run real `polku serve` processes; a failed test shows their output."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from server import PolkuServer

_SERVERS = pytest.StashKey[list[PolkuServer]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"polku serve output ({server.log_path})", server.logs()))
    return report


@pytest.fixture
def polku_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., PolkuServer]]:
    """Start `polku serve` processes (SQLite in tmp_path, or `database_url`); all are
    stopped after the test."""
    servers: list[PolkuServer] = []
    request.node.stash[_SERVERS] = servers

    def start(database_url: str | None = None) -> PolkuServer:
        name = f"server{len(servers) + 1}"
        server = PolkuServer(tmp_path / name, tmp_path / f"{name}.log", database_url=database_url)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
