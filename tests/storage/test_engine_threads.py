"""The SQLite engines' background checkpoint threads end with their runtime."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from polku.runtime import Runtime
from polku.settings import Settings


def _checkpointers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "polku-wal-checkpoint"}


def test_closing_a_runtime_stops_its_checkpoint_threads(tmp_path: Path) -> None:
    before = _checkpointers()
    runtime = Runtime.open(Settings.build(data_dir=tmp_path, pipeline="thread"))
    started = _checkpointers() - before
    assert len(started) == 2  # the state database's engine and the log file's

    runtime.close()

    deadline = time.monotonic() + 5
    while any(t.is_alive() for t in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in started if t.is_alive()]
