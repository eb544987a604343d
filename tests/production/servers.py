"""Private, real NATS and PostgreSQL servers for fault tests: start, stop, kill, restart.

The machine's shared servers (NATS on 4222, PostgreSQL on 5432) serve other tests running in
parallel and CI, so a test that stops a server must own it. Each server here is a child process
on a free loopback port with its own store: a nats-server with JetStream in `store_dir`, a
PostgreSQL cluster made by initdb in `data_dir`. A server restarts on the same port and the
same store, so streams and rows survive and clients can reconnect to the same URL.

`nats_servers` and `postgres_servers` stop every server they started and add the servers'
output to the exception of a failing test. A missing binary skips the test, except under
CI=true, where the real-component tests must run and it fails instead.

PostgreSQL refuses to run as root, so as root (here and in CI) initdb and postgres run as
the `postgres` OS user; its data directory must then be reachable by that user, which
pytest's tmp_path (under a 0700 /tmp/pytest-of-root) is not: `private_dir` makes one that is.

Imported as ``from servers import ...``: pytest's default (prepend) import mode puts this
folder on sys.path for its test modules. There is deliberately no conftest.py here, because
test modules elsewhere import the root conftest by name.
"""

from __future__ import annotations

import asyncio
import functools
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

import nats
import psycopg
import pytest

__all__ = [
    "NatsServer",
    "PostgresServer",
    "free_port",
    "in_ci",
    "nats_servers",
    "postgres_bindir",
    "postgres_servers",
    "private_dir",
]

NATS_SERVER = Path("/usr/sbin/nats-server")
POSTGRES_OS_USER = "postgres"
ADDRESS_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
NOTE_LIMIT = 20_000  # characters of a server's output added to a failing test's report


def in_ci() -> bool:
    """Whether CI=true: read on each call, so a test can set it with monkeypatch."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """Skip the test because `message`; under CI=true fail it, as the suite's rule says."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: the real-server tests must run, not skip)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _ServerProcess:
    """One server child process whose stdout and stderr go to `log_path`."""

    name = "server"
    listening = ""
    """What the server prints once it listens on `{port}`: proof that `_ready` asks *it*."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._ever_ready = False  # once it served on `port`, the port is its own

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text("utf-8", "replace")

    def _output_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_options(self) -> dict[str, Any]:
        return {}

    def _ready(self) -> bool:
        raise NotImplementedError

    def _note(self, line: str) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} {line}\n".encode())

    def _start_process(self, timeout: float) -> None:
        """Start the process and wait until `_ready`; on a first start, dodge a taken port."""
        assert not self.running, f"{self.name} is already running on port {self.port}"
        for _attempt in range(3):
            command = self._command()
            self._note("$ " + " ".join(command))
            offset = self.log_path.stat().st_size
            self._log_file = self.log_path.open("ab")
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                **self._popen_options(),
            )
            try:
                self._wait_ready(timeout, offset)
                self._ever_ready = True
                return
            except _PortTaken:
                # Another process (an xdist worker?) took the free port between our check and
                # the bind. Only a first start may move; a restart must keep its URL.
                if self._ever_ready:
                    raise RuntimeError(
                        f"{self.name} cannot listen on its port {self.port} again: something "
                        f"else took it while it was down.\n{self._output_since(offset)}"
                    ) from None
                self.port = free_port()
        raise RuntimeError(f"{self.name} found no free port in 3 attempts:\n{self.logs()}")

    def _wait_ready(self, timeout: float, offset: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self._close_log()
                output = self._output_since(offset)
                if ADDRESS_IN_USE.search(output):
                    raise _PortTaken
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} while starting on "
                    f"127.0.0.1:{self.port}; its output:\n{output}"
                )
            listens = self.listening.format(port=self.port) in self._output_since(offset)
            if listens and self._ready():
                return
            if time.monotonic() > deadline:
                self._signal(signal.SIGKILL, timeout=5)
                raise RuntimeError(
                    f"{self.name} was not ready on 127.0.0.1:{self.port} after {timeout} s "
                    f"and was killed; its output:\n{self.logs()}"
                )
            time.sleep(0.02)

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        """Send `sig` and wait for the exit; SIGKILL if it takes longer than `timeout`."""
        if self.process is not None and self.process.poll() is None:
            self._note(f"sending {sig.name}")
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note(f"still running after {timeout} s: sending SIGKILL")
                self.process.kill()
                self.process.wait(timeout=10)
            self._note(f"exited with {self.process.returncode}")
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class _PortTaken(Exception):
    """The server could not bind its port: something else listens there."""


class NatsServer(_ServerProcess):
    """A private nats-server with JetStream on 127.0.0.1, storing streams in `store_dir`."""

    name = "nats-server"
    listening = "Listening for client connections on 127.0.0.1:{port}"

    def __init__(self, store_dir: Path, log_path: Path, *, binary: Path | None = None) -> None:
        super().__init__(log_path)
        self.binary = binary or _nats_binary()
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            unavailable(f"no NATS server at {self.binary} (install the nats-server package)")
        self.store_dir = store_dir

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start, and return once it takes connections and JetStream answers."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._start_process(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: a graceful shutdown; SIGKILL if it takes longer than `timeout`."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to flush or say goodbye."""
        self._signal(signal.SIGKILL, timeout=10)

    def _command(self) -> list[str]:
        return [
            str(self.binary),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
            "--server_name",
            "polku-test",  # a stable name: the same server, restarted, owns the same store
        ]

    def _ready(self) -> bool:
        return _accepts(self.port) and asyncio.run(_jetstream_answers(self.url))


async def _jetstream_answers(url: str) -> bool:
    async def quiet(exc: Exception) -> None:
        pass  # a refused probe is expected while the server starts

    try:
        # max_reconnect_attempts=0 would retry forever (nats-py 2.16): one attempt, no wait.
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=1,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=quiet,
            ),
            timeout=2,
        )
    except Exception:
        return False
    try:
        await nc.jetstream(timeout=1).account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()


@functools.cache
def _nats_binary() -> Path:
    if NATS_SERVER.is_file():
        return NATS_SERVER
    found = shutil.which("nats-server")
    return Path(found) if found else NATS_SERVER


@functools.cache
def postgres_bindir() -> Path | None:
    """The directory with PostgreSQL's initdb and postgres, the newest version if several."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for found in (shutil.which("initdb"), shutil.which("postgres")):
        if found:
            candidates.append(Path(found).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "postgres")):
            return bindir
    return None


StopMode = Literal["smart", "fast", "immediate"]
_STOP_SIGNALS: dict[StopMode, signal.Signals] = {
    "smart": signal.SIGTERM,  # waits for clients to disconnect
    "fast": signal.SIGINT,  # disconnects clients, checkpoints, exits cleanly
    "immediate": signal.SIGQUIT,  # exits at once, like a crash: the next start recovers from WAL
}


class PostgresServer(_ServerProcess):
    """A private PostgreSQL cluster in `data_dir`, on 127.0.0.1, trusting every local user.

    initdb runs at the first start. As root, the cluster runs as the `postgres` OS user and
    `data_dir` must be reachable by it: make it inside `private_dir()`. The settings trade
    crash safety of the *machine* for speed (fsync and full-page writes off) but keep commits
    synchronous, so a killed or immediately stopped server loses no committed transaction,
    which is what the fault tests check.
    """

    name = "postgres"
    listening = 'listening on IPv4 address "127.0.0.1", port {port}'

    def __init__(self, data_dir: Path, log_path: Path, *, bindir: Path | None = None) -> None:
        super().__init__(log_path)
        found = bindir or postgres_bindir()
        if found is None or not (found / "postgres").is_file():
            where = found or "pg_config --bindir nor /usr/lib/postgresql/*/bin"
            unavailable(f"no PostgreSQL server binaries in {where} (install postgresql)")
        self.bindir = found
        self.data_dir = data_dir.absolute()
        self._os_user = _postgres_os_user()
        if self._os_user is not None:
            blocked = _untraversable_parent(self.data_dir, self._os_user)
            if blocked is not None:
                raise ValueError(
                    f"the {self._os_user.pw_name} OS user cannot reach {self.data_dir}: "
                    f"{blocked} is closed to it. Put the data directory inside private_dir()."
                )
        socket_path = self.data_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path)) > 100:  # sun_path holds 107 bytes, and ports can grow
            raise ValueError(
                f"{self.data_dir} is too long a path for PostgreSQL's Unix socket "
                f"({socket_path}); put the data directory inside private_dir()."
            )

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the `postgres` database, over TCP."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self) -> str:
        """The same database as a libpq connection string, for psycopg."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def start(self, timeout: float = 30.0) -> None:
        """Start (after initdb, the first time); return once it answers a query."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._start_process(timeout)

    def stop(self, mode: StopMode = "fast", timeout: float = 10.0) -> None:
        """Shut down in PostgreSQL's `mode`; SIGKILL if it takes longer than `timeout`."""
        self._signal(_STOP_SIGNALS[mode], timeout)

    def restart(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Stop in `mode`, then start on the same port and data directory."""
        self.stop(mode)
        self.start(timeout)

    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._os_user is not None:
            os.chown(self.data_dir, self._os_user.pw_uid, self._os_user.pw_gid)
        command = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "--no-sync",
            "--no-instructions",
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        self._note("$ " + " ".join(command))
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
                **self._popen_options(),
            )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed with {result.returncode}:\n{self.logs()}")

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "50",
            "log_line_prefix": "%m [%p] ",
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _popen_options(self) -> dict[str, Any]:
        # No PG* variable of the developer's shell (PGPORT, PGDATA ...) reaches the server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        options: dict[str, Any] = {"env": env, "cwd": self.data_dir.parent}
        if self._os_user is not None:
            options.update(user=self._os_user.pw_uid, group=self._os_user.pw_gid, extra_groups=[])
        return options

    def _ready(self) -> bool:
        try:
            with psycopg.connect(self.conninfo, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True


def _postgres_os_user() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as when we are root (it refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        unavailable(f"running as root and there is no {POSTGRES_OS_USER!r} OS user to run as")


def _untraversable_parent(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first existing parent of `path` that `user` may not enter, if any."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for parent in reversed(path.parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None  # we create the rest, with the default (traversable) mode
        if st.st_uid == user.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return parent
    return None


@contextmanager
def private_dir(prefix: str = "polku-") -> Iterator[Path]:
    """A new, short-named directory in the system temp dir, removed afterwards.

    As root it belongs to the `postgres` OS user, so a PostgreSQL data directory can live in
    it; the short path keeps the server's Unix socket under the length limit.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        user = _postgres_os_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _report(servers: Sequence[_ServerProcess], exc: BaseException) -> None:
    if isinstance(exc, pytest.skip.Exception):
        return
    for server in servers:
        output = server.logs()
        if len(output) > NOTE_LIMIT:
            output = "(...)\n" + output[-NOTE_LIMIT:]
        exc.add_note(f"--- {server.name} output ({server.log_path}) ---\n{output}")


@contextmanager
def nats_servers(tmp_path: Path) -> Iterator[Callable[[], NatsServer]]:
    """Start private NATS servers with the yielded function, each with a store in `tmp_path`.

    On the way out every server is stopped; if the block raised, each server's output is
    added to the exception as a note, which pytest prints with the failure.
    """
    servers: list[NatsServer] = []

    def start() -> NatsServer:
        name = f"nats{len(servers) + 1}"
        server = NatsServer(tmp_path / name, tmp_path / f"{name}.log")
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    except BaseException as exc:
        _report(servers, exc)
        raise
    finally:
        for server in servers:
            server.stop()


@contextmanager
def postgres_servers(tmp_path: Path) -> Iterator[Callable[[], PostgresServer]]:
    """Start private PostgreSQL servers with the yielded function; logs go to `tmp_path`.

    Each cluster lives in its own `private_dir()`, removed on the way out after every server
    was stopped; if the block raised, each server's output is added to the exception.
    """
    servers: list[PostgresServer] = []
    with ExitStack() as dirs:

        def start() -> PostgresServer:
            name = f"postgres{len(servers) + 1}"
            path = dirs.enter_context(private_dir("polku-pg-"))
            server = PostgresServer(path / "data", tmp_path / f"{name}.log")
            servers.append(server)
            server.start()
            return server

        try:
            yield start
        except BaseException as exc:
            _report(servers, exc)
            raise
        finally:
            for server in servers:
                server.stop()
