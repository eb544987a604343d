"""`polku demo` as a newcomer runs it: a demo workspace, its keys and URLs printed, simulated
shoppers streamed through the public API, and profiles forming from them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from polku_server import POLKU, free_port


def test_demo_prints_keys_and_urls_and_profiles_form(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "POLKU_DATA_DIR": str(tmp_path), "POLKU_PORT": str(port)}
    process = subprocess.Popen(
        [str(POLKU), "demo", "--shoppers", "12", "--rate", "2000", "--seed", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("demo: done"):
                break
        output = "".join(lines)
        assert "demo: done" in output, output
        token = next(line.split()[-1] for line in lines if "admin token:" in line)
        assert any("write key:" in line and "wk_" in line for line in lines), output
        assert f"http://127.0.0.1:{port}/docs" in output
        accepted = int(output.split("demo: done, ")[1].split()[0])
        assert accepted > 50

        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = httpx.get(f"{base}/health").json()
            if health["pipeline_position"] >= health["log_head"]:
                break
            time.sleep(0.1)
        found = httpx.get(f"{base}/v1/profiles", params={"limit": 50}, headers=headers).json()
        people = found["profiles"] if isinstance(found, dict) else found
        assert 0 < len(people) <= 40  # 12 shoppers: some browse without ever being joined
        channels: set[str] = set()
        for person in people:
            profile = httpx.get(f"{base}/v1/profiles/{person['profile_id']}", headers=headers)
            channels.update(profile.json()["channels"])
        assert {"web", "store"} <= channels
        # The ready-made journeys run on the shoppers: their email lands in the demo mailbox.
        assert "ready-made journeys enabled" in output
        assert f"http://127.0.0.1:{port}/console/" in output
        assert "store_staff:  kamppi@demo.pohjoisretki.fi (store-hki-kamppi)" in output
        login = httpx.get(f"{base}/console/login")
        assert login.status_code == 200
        index = tmp_path / "demo-mail" / "index.txt"
        deadline = time.monotonic() + 30
        while not index.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert index.exists(), "no journey email reached the demo mailbox"
        first = index.read_text("utf-8").splitlines()[0]
        assert "@" in first and ".eml" in first
        journeys = httpx.get(f"{base}/v1/journeys", headers=headers).json()["journeys"]
        assert {j["key"] for j in journeys} >= {"abandoned-cart", "order-thanks", "birthday"}
        assert all(j["enabled"] for j in journeys)
        rejected = httpx.get(f"{base}/v1/debugger/rejections", headers=headers).json()
        assert all(r["code"] for r in rejected["rejections"])
        # Buying signals fire from the shoppers, some routed to a store's staff queue with
        # reasons in words (issue 5: a shopper checks stock nearby, then hesitates).
        assert "/v1/signals/live?queue=store:" in output
        found = httpx.get(f"{base}/v1/signals", params={"limit": 200}, headers=headers).json()
        signals = found["signals"]
        assert signals, "the demo raised no buying signal"
        assert all(
            s["reasons"] and s["reasons"][0]["en"] and s["reasons"][0]["fi"] for s in signals
        )
        at_stores = [s for s in signals if any(q.startswith("store:") for q in s["queues"])]
        assert any(s["kind"] == "stock_check_near_home" for s in at_stores), {
            (s["kind"], *s["queues"]) for s in signals
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
