"""A real HTTP server in a thread standing in for an SMS gateway or a webhook receiver (the
channels and console tests; beside conftest.py, so every test folder can import it):
it records each request and answers the statuses and bodies it is told to, in turn."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Receiver:
    """Answers `answers` ((status, body) pairs) in turn, then 200 with `{"id": "m-<n>"}`;
    `delay` seconds before answering (for timeouts)."""

    def __init__(self, answers: list[tuple[int, bytes]] | None = None, delay: float = 0) -> None:
        self.answers = list(answers or [])
        self.requests: list[Request] = []
        self.delay = delay
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(Request(self.path, headers, body))
                if receiver.delay:
                    receiver._stop.wait(receiver.delay)
                if receiver.answers:
                    status, answer = receiver.answers.pop(0)
                else:
                    status, answer = 200, b'{"id": "m-%d"}' % len(receiver.requests)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(answer)  # the client may have timed out already

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
