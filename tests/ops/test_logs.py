"""Structured logs: the JSON formatter through `logging` itself, and `polku` commands
switching format with POLKU_LOG_FORMAT (in a child process, so this one's logging is untouched)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from polku.cli import main
from polku.ops.logs import JsonFormatter


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records go, formatted as JSON, into a string buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"polku.test.json.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_extra_fields(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.warning(
        "poison event at %d\nset aside",
        1207,
        extra={
            "event_id": "ev-1",
            "message_id": "m-81f2",
            "offset": 1207,
            "workspace_id": "default",
            "partition": 3,
            "consumer": "identity",
            "path": Path("/tmp/x"),  # not JSON by itself: written as its string
        },
    )
    [line] = _lines(stream)  # the newline in the message stays inside the one line
    assert line["level"] == "WARNING"
    assert line["logger"] == logger.name
    assert line["message"] == "poison event at 1207\nset aside"
    assert line["event_id"] == "ev-1"
    assert line["message_id"] == "m-81f2"
    assert line["offset"] == 1207
    assert line["workspace_id"] == "default"
    assert line["partition"] == 3
    assert line["consumer"] == "identity"
    assert line["path"] == "/tmp/x"
    assert line["time"].endswith("Z")
    moment = datetime.fromisoformat(line["time"])
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60
    # The standard record attributes stay out; only what a reader needs is there.
    assert not {"args", "msg", "levelno", "pathname", "created"} & set(line)


def test_exceptions_are_one_field(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    try:
        raise RuntimeError("the projection broke")
    except RuntimeError:
        logger.exception("consumer failed", extra={"consumer": "profiles"})
    [line] = _lines(stream)
    assert line["level"] == "ERROR"
    assert line["consumer"] == "profiles"
    assert line["exception"].startswith("Traceback")
    assert "RuntimeError: the projection broke" in line["exception"]


def test_values_json_cannot_hold_still_give_a_line(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.info("huge", extra={"offset": 2**70})
    [line] = _lines(stream)
    assert line["offset"] == str(2**70)


def _polku(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "POLKU_LOG_FORMAT"}
    return subprocess.run(
        [sys.executable, "-c", "from polku.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**inherited, **env},
        timeout=120,
    )


def test_polku_commands_log_json_lines_with_polku_log_format_json(tmp_path: Path) -> None:
    result = _polku("-v", "migrate", "--data-dir", str(tmp_path), POLKU_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert lines, "verbose migrate logged nothing"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"].startswith("alembic") for line in lines)


def test_polku_commands_log_text_by_default(tmp_path: Path) -> None:
    result = _polku("-v", "migrate", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    assert not any(line.startswith("{") for line in lines)
    assert any(" INFO alembic" in line for line in lines)


def test_a_bad_log_format_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["migrate", "--data-dir", str(tmp_path)], env={"POLKU_LOG_FORMAT": "xml"}
    )
    assert result.exit_code == 2
    assert "POLKU_LOG_FORMAT" in result.output
