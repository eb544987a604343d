"""What the console's browser tests share: a real `polku serve`, Debian's Chromium through
Playwright, users of each role, signing in, screenshots and an accessibility check.

Use it from a test module as

    from e2e_console import Console, open_console

    @pytest.fixture
    def console(tmp_path):
        yield from open_console(tmp_path)

`console.server` is the `PolkuServer`; `console.page(email)` opens a new browser page
signed in as `email` (created first with `console.user(...)`); `console.shoot(page, name)`
saves `build/screenshots/<name>.png` in the repository (the pictures of docs/console.md are
copied from there by `scripts/screenshots`); `console.accessible(page)` fails on any axe-core
violation of impact serious or critical. Under CI=true a missing browser fails instead of
skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from polku_server import PolkuServer

__all__ = ["ALL_DAY", "CHROMIUM", "PASSWORD", "Console", "open_console"]

CHROMIUM = os.environ.get("POLKU_TEST_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "kuusi kuusta kuusessa"
ALL_DAY = {day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401  (only to learn whether it is installed)
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/test does it)"
    return None


class Console:
    """A running Polku and a browser against it."""

    def __init__(self, server: PolkuServer, browser: Any) -> None:
        self.server = server
        self.browser = browser
        self.url = server.url + "/console"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server.admin_token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to Polku's HTTP API as the workspace admin."""
        return httpx.request(
            method, self.server.url + path, headers=self.admin, timeout=30, **kwargs
        )

    def store(self, location_id: str, name: str, latitude: float, longitude: float) -> None:
        body = {
            "location_id": location_id,
            "name": name,
            "address": ["Urho Kekkosen katu 1"],
            "postal_code": "00100",
            "city": "Helsinki",
            "latitude": latitude,
            "longitude": longitude,
            "click_and_collect": True,
            "hours": ALL_DAY,
        }
        response = self.api("POST", "/v1/locations", json=body)
        assert response.status_code == 201, response.text

    def user(self, email: str, role: str, *stores: str, locale: str | None = None) -> str:
        """A console user created with `polku users create` (password `PASSWORD`)."""
        args = ["users", "create", email, "--role", role, "--password-stdin"]
        for store in stores:
            args += ["--store", store]
        if locale:
            args += ["--locale", locale]
        self.server.polku(*args, stdin=PASSWORD + "\n")
        return email

    def page(self, email: str, locale: str = "en-GB", width: int = 1280, height: int = 900) -> Any:
        """A new browser page (cookies of its own) signed in as `email`."""
        from playwright.sync_api import expect

        context = self.browser.new_context(
            locale=locale, viewport={"width": width, "height": height}
        )
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(self.url + "/login")
        page.locator("input[name=email]").fill(email)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("form button[type=submit]").last.click()
        expect(page.get_by_test_id("who")).to_contain_text(email)
        return page

    def shoot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot as build/screenshots/<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def accessible(self, page: Any) -> None:
        """No serious or critical axe-core violation on the page as it is now."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(page)
        bad = [
            v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
        ]
        assert not bad, "\n".join(
            f"{v['id']} ({v['impact']}): {v['help']}: "
            + "; ".join(n["html"][:160] for n in v["nodes"][:3])
            for v in bad
        )


def open_console(tmp_path: Path) -> Iterator[Console]:
    """Start `polku serve` and Chromium; stop both after the test."""
    problem = _browser_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: the browser test must run)")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    server = PolkuServer(tmp_path / "data", tmp_path / "serve.log")
    try:
        server.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                yield Console(server, browser)
            finally:
                browser.close()
    except BaseException as exc:
        exc.add_note(f"--- polku serve output ---\n{server.logs()}")
        raise
    finally:
        server.stop()
