"""Send simulated shoppers to a running Polku over its public HTTP API, as a shop would."""

from __future__ import annotations

import base64
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from polku.demo.shoppers import ShopperSimulator, batches

__all__ = ["feed_shoppers"]


def _post(url: str, write_key: str, body: bytes) -> tuple[int, bytes]:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def feed_shoppers(
    *,
    url: str,
    write_key: str,
    rate: float,
    shoppers: int | None,
    seed: int,
    stop: threading.Event,
    echo: Callable[[str], None],
    ready: Callable[[], bool],
    batch_size: int = 10,
) -> int:
    """Stream shoppers' events to `url` at about `rate` events/s; return how many were sent."""
    while not ready():
        if stop.wait(0.05):
            return 0
    # Simulated time starts now, so the journeys treat the shoppers as live, not a backfill.
    simulator = ShopperSimulator(seed=seed, start=datetime.now(UTC))
    sent = rejected = 0
    started = time.monotonic()
    last_report = started
    for batch in batches(simulator.stream(shoppers), size=batch_size):
        if stop.is_set():
            break
        status, body = _post(f"{url}/v1/batch", write_key, orjson.dumps({"batch": batch}))
        if status >= 500:
            echo(f"demo: Polku answered {status}; retrying in a second")
            stop.wait(1.0)
            continue
        answer = orjson.loads(body) if body else {}
        sent += int(answer.get("accepted", 0))
        rejected += len(answer.get("rejected", []))
        now = time.monotonic()
        if now - last_report >= 5:
            echo(f"demo: {sent} events accepted, {rejected} rejected on purpose (see debugger)")
            last_report = now
        pause = started + (sent + rejected) / max(rate, 0.1) - now
        if pause > 0 and stop.wait(pause):
            break
    echo(f"demo: done, {sent} events accepted, {rejected} rejected")
    return sent
