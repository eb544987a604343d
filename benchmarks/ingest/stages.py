"""CPU cost of each ingest stage in µs per event, in one process, without HTTP or concurrency.

    .venv/bin/python benchmarks/ingest/stages.py [--batches 400] [--profile identity]

Uses the events of the ingest benchmark (`run.py`) and times, one after another on a fresh
SQLite database: decoding a batch body and validating/stamping its messages (what the
server does per request), appending the events to the log (`synchronous=FULL`, one commit
per 100-event batch, as without group commit), then each pipeline consumer over the whole
log in the runner's chunks: reading and parsing the chunks once, then each consumer's
prepare (in a read transaction) and apply (in a write transaction), `synchronous=NORMAL`
as in the pipeline process. `--profile STAGE` runs that stage under cProfile and prints
the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import orjson
from machine import banner
from run import BATCH, make_bodies

from polku.access.actions import ensure_default_workspace
from polku.access.queries import KeyCache
from polku.collect.validate import prepare
from polku.events import LoggedEvent
from polku.gctune import tune_for_throughput
from polku.pipeline.consumer import Consumer
from polku.runtime import Runtime
from polku.settings import Settings
from polku.storage.engine import writing


def timed(name: str, events: int, profile: str | None, fn: Callable[[], object]) -> float:
    """Run `fn` once (under cProfile when `profile` names this stage); print µs/event."""
    profiler = cProfile.Profile() if profile == name else None
    start, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.runcall(fn)
    else:
        fn()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    per_event = elapsed / events * 1e6
    print(
        f"{name:>10}: {per_event:6.1f} µs/event wall, {cpu / events * 1e6:6.1f} µs/event CPU "
        f"({events} events, {elapsed:.2f} s)"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(30)
    return per_event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="events per pipeline chunk (default: POLKU_PIPELINE_BATCH); small chunks show "
        "the fixed cost per cycle that a lightly loaded pipeline pays",
    )
    parser.add_argument("--profile", help="a stage: collect, append, read, or a consumer's name")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep CPython's garbage collector settings (the server and the pipeline "
        "process tune it with polku.gctune)",
    )
    args = parser.parse_args()
    print(banner("ingest stages"))
    bodies = make_bodies(args.batches)
    n = len(bodies) * BATCH

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.build(data_dir=Path(tmp), pipeline="off")
        rt = Runtime.open(settings)
        with writing(rt.engine) as conn:
            created = ensure_default_workspace(conn)
        assert created is not None
        key = created[0]
        source = KeyCache(rt.engine).source(key)
        assert source is not None
        if not args.default_gc:
            tune_for_throughput()
        prepared: list[list[object]] = []

        def collect() -> None:
            for body in bodies:
                data = orjson.loads(body)
                received_at = int(time.time() * 1000)
                prepared.append(
                    [
                        prepare(
                            raw,
                            implied_type=None,
                            received_at=received_at,
                            batch_sent_at=data.get("sentAt"),
                            workspace_id=source.workspace_id,
                            source_id=source.source_id,
                            max_event_bytes=settings.max_event_bytes,
                            identity=rt.identity,
                            index=index,
                            batch_context=None,
                        )
                        for index, raw in enumerate(data["batch"])
                    ]
                )

        def append() -> None:
            for events in prepared:
                rt.log.append_sync(events)  # type: ignore[arg-type]

        timed("collect", n, args.profile, collect)
        timed("append", n, args.profile, append)
        rt.log.close()
        rt.engine.dispose()

        pipe_rt = Runtime.open(settings.replace(sqlite_synchronous="NORMAL"), migrate=False)
        engine = pipe_rt.engine
        chunks: list[list[LoggedEvent]] = []

        def read() -> None:
            after = 0
            while events := pipe_rt.log.read(after, args.chunk or settings.pipeline_batch):
                for event in events:
                    event.message  # noqa: B018 (parsed once, shared by the consumers)
                chunks.append(events)
                after = events[-1].offset

        timed("read", n, args.profile, read)
        for consumer in pipe_rt.pipeline.consumers:
            # As the pipeline does when it starts: load what the first batch would wait for
            # (the signals model: seconds of imports, not a cost per event).
            warm = getattr(consumer, "warm", None)
            if callable(warm):
                warm()

            def project(consumer: Consumer = consumer) -> None:
                for events in chunks:
                    with engine.connect() as reader, reader.begin():
                        apply = consumer.prepare(reader, events)
                    with writing(engine) as conn:
                        apply(conn)

            timed(consumer.name, n, args.profile, project)
        engine.dispose()


if __name__ == "__main__":
    main()
