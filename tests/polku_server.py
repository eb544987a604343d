"""A real `polku serve` process for the acceptance and browser tests: start, wait until
healthy, run other `polku` commands on its data, kill, restart.

The process is the installed `polku` command, exactly as an operator runs it. Its output goes
to a log file; `polku_servers` stops every server it started and adds that output to the
exception of a failing test, so the report shows what the server said.

Imported as ``from polku_server import ...``: it sits beside the root conftest.py, whose
folder pytest's default (prepend) import mode puts on sys.path for every test module.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

__all__ = ["POLKU", "PolkuServer", "free_port", "polku_servers"]

POLKU = Path(sys.executable).with_name("polku")
"""The `polku` console script of the environment the tests run in (.venv/bin/polku)."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PolkuServer:
    """One `polku serve` on 127.0.0.1, on SQLite in `data_dir` or on `database_url`.

    The write key and admin token that `polku serve` prints on a fresh database are read from
    its output at the first start and kept across restarts.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.log_path = log_path
        self.database_url = database_url
        self.port = free_port()
        self.write_key = ""
        self.admin_token = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "polku.db"

    @property
    def log_sqlite_path(self) -> Path:
        """The SQLite file that holds the log (beside the state database)."""
        return self.data_dir / "polku-log.db"

    def logs(self) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text("utf-8", "replace")

    def environment(self) -> dict[str, str]:
        """The environment of its processes: only what the command line and the test say,
        no POLKU_* setting of the developer's shell."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLKU_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)  # what the test sets on purpose
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
        """Start the process and return once GET /health answers 200."""
        assert self.process is None or self.process.poll() is not None, "already running"
        command = [
            str(POLKU),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.database_url:
            command += ["--database", self.database_url]
        env = self.environment()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"$ {' '.join(command)}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, env=env
        )
        self._wait_healthy(timeout)
        if not self.write_key:
            self._read_credentials()

    def _wait_healthy(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"polku serve exited with {self.process.returncode}:\n{self.logs()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"polku serve not healthy after {timeout} s:\n{self.logs()}")
            time.sleep(0.05)

    def _read_credentials(self) -> None:
        output = self.logs()
        key = re.search(r"write key:\s+(\S+)", output)
        token = re.search(r"admin token:\s+(\S+)", output)
        if key is None or token is None:
            raise RuntimeError(f"polku serve printed no write key and admin token:\n{output}")
        self.write_key, self.admin_token = key.group(1), token.group(1)

    def children(self) -> list[int]:
        """The server's child processes (the pipeline's, in the embedded mode)."""
        if self.process is None:
            return []
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            found += [int(pid) for pid in task.read_text().split()]
        return found

    def kill(self, *, children: bool = False) -> None:
        """SIGKILL: the process gets no chance to flush or shut down; with `children`, its
        pipeline process dies the same instant (else it notices its parent is gone)."""
        if children:
            for pid in self.children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM and a graceful shutdown; SIGKILL if it takes more than 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@contextmanager
def polku_servers(tmp_path: Path) -> Iterator[Callable[..., PolkuServer]]:
    """Start servers with the yielded function (SQLite in `tmp_path`, or `database_url`).

    On the way out every server is stopped; if the block raised, each server's output is
    added to the exception as a note, which pytest prints with the failure.
    """
    servers: list[PolkuServer] = []

    def start(database_url: str | None = None, env: dict[str, str] | None = None) -> PolkuServer:
        name = f"server{len(servers) + 1}"
        server = PolkuServer(
            tmp_path / name, tmp_path / f"{name}.log", database_url=database_url, env=env
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    except BaseException as exc:
        for server in servers:
            exc.add_note(f"--- polku serve output ({server.log_path}) ---\n{server.logs()}")
        raise
    finally:
        for server in servers:
            server.stop()
