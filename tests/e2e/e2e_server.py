"""A real `polku serve` process for the browser tests: start it, wait until healthy, stop it.

The small part of tests/acceptance/server.py these tests need (test folders share no
modules): the installed `polku` command on a free loopback port, on SQLite in a folder of
the test's own, its output in a log file that a failing test shows.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

__all__ = ["POLKU", "PolkuServer"]

POLKU = Path(sys.executable).with_name("polku")
"""The `polku` console script of the environment the tests run in (.venv/bin/polku)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PolkuServer:
    """One `polku serve` on 127.0.0.1 with its data in `data_dir`; the write key and admin
    token it prints on the fresh database are read from its output."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = _free_port()
        self.write_key = ""
        self.admin_token = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text("utf-8", "replace")

    def environment(self) -> dict[str, str]:
        """The environment without the developer's POLKU_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLKU_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def polku(self, *args: str, stdin: str | None = None) -> str:
        """Run another `polku` command on the same data folder; its output."""
        done = subprocess.run(
            [str(POLKU), *args, "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"polku {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def start(self, timeout: float = 60.0) -> None:
        command = [str(POLKU), "serve", "--data-dir", str(self.data_dir)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, env=self.environment()
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"polku serve exited:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"polku serve not healthy after {timeout} s:\n{self.logs()}")
            time.sleep(0.05)
        key = re.search(r"write key:\s+(\S+)", self.logs())
        token = re.search(r"admin token:\s+(\S+)", self.logs())
        if key is None or token is None:
            raise RuntimeError(f"polku serve printed no write key and admin token:\n{self.logs()}")
        self.write_key, self.admin_token = key.group(1), token.group(1)

    def stop(self) -> None:
        """SIGTERM and a graceful shutdown; SIGKILL if it takes more than 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
