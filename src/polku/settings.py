"""Every setting Polku reads, declared once as data: typed, with help text and defaults.

The CLI options, the docs (`docs/settings.md`) and validation all come from `SETTINGS`, so a
setting cannot exist without being documented. Values are read from ``POLKU_*`` environment
variables once, by `load`, and passed explicitly to `create_app(settings)`; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SETTINGS", "Secret", "Setting", "Settings", "SettingsError", "load"]


class Secret:
    """A string that never prints: `repr` and `str` show only that it is set."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """A setting's value could not be understood; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False

    @property
    def env(self) -> str:
        return "POLKU_" + self.name.upper()


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _csv(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _synchronous(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"FULL", "NORMAL", "EXTRA"}:
        raise ValueError(f"expected FULL, NORMAL or EXTRA, got {raw!r}")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "",
        "Where state lives. Empty: a SQLite file in POLKU_DATA_DIR (embedded mode). "
        "For PostgreSQL: postgresql+psycopg://user:password@host:5432/dbname.",
        secret=True,
    ),
    Setting("data_dir", "./polku-data", "Folder for the embedded SQLite database.", Path),
    Setting("host", "127.0.0.1", "Address `polku serve` listens on."),
    Setting("port", 8080, "Port `polku serve` listens on.", int),
    Setting(
        "sqlite_synchronous",
        "FULL",
        "SQLite `synchronous` pragma in WAL mode. FULL survives power loss; NORMAL survives "
        "a killed process but may lose the last commits on power loss.",
        _synchronous,
    ),
    Setting("max_event_bytes", 32 * 1024, "Largest accepted single event (Segment: 32 KB).", int),
    Setting(
        "max_batch_bytes", 500 * 1024, "Largest accepted batch request (Segment: 500 KB).", int
    ),
    Setting(
        "max_body_bytes",
        4 * 1024 * 1024,
        "Largest request body after gzip decompression; guards against zip bombs.",
        int,
    ),
    Setting(
        "auto_migrate",
        True,
        "Run database migrations when the server starts (the embedded default).",
        _bool,
    ),
    Setting(
        "pipeline",
        "process",
        "Where the pipeline consumers (identity, profiles) run: `process` (a child process "
        "of `polku serve`, so projection work never slows the API), `thread` (inside the "
        "server process) or `off` (another process runs them).",
        _choice("process", "thread", "off"),
    ),
    Setting("pipeline_batch", 2000, "Events a pipeline consumer takes from the log at once.", int),
    Setting(
        "log_url",
        "",
        "Where the event log lives. Empty: a table in the state database (embedded mode). "
        "nats://host:4222 (comma-separate several servers of a cluster): a NATS JetStream "
        "stream (production mode; needs PostgreSQL as the database, `polku worker` "
        "processes to project the events, and `polku migrate` to create the stream).",
    ),
    Setting("nats_stream", "POLKU", "Name of the JetStream stream that holds the log."),
    Setting(
        "nats_subject_prefix",
        "polku.events",
        "Subject prefix of the log's messages: <prefix>.<workspace>.<partition>.",
    ),
    Setting(
        "partitions",
        16,
        "Partitions of the NATS log; a customer's events always go to one partition, and "
        "workers share the partitions among them. Fixed when `polku migrate` first creates "
        "the stream: API processes and workers refuse to start with another number.",
        int,
    ),
    Setting(
        "nats_max_age_days",
        30.0,
        "How long the stream keeps events (days). PostgreSQL keeps its own copy for good.",
        float,
    ),
    Setting(
        "nats_replicas",
        1,
        "Copies of the stream in the NATS cluster (1 for one server; 3 on a 3-node cluster).",
        int,
    ),
    Setting(
        "nats_duplicate_window",
        120.0,
        "Seconds within which JetStream drops a second message with the same messageId.",
        float,
    ),
    Setting(
        "lease_seconds",
        15.0,
        "How long a worker's claim on a partition lasts without renewal; a worker that dies "
        "loses its partitions to the others after this long.",
        float,
    ),
    Setting(
        "worker_batch",
        500,
        "Events a worker takes from one partition at once.",
        int,
    ),
    Setting(
        "phone_region",
        "FI",
        "Country assumed for phone numbers written without a country code (ISO 3166 code).",
    ),
    Setting(
        "shared_devices",
        frozenset(),
        "Comma-separated device ids of shared devices (store tablets, tills, kiosks); they "
        "are recorded on events but never join two people.",
        _csv,
    ),
    Setting(
        "cors_origins",
        frozenset({"*"}),
        "Comma-separated origins allowed to post events from browsers; * allows any.",
        _csv,
    ),
    Setting(
        "public_url",
        "",
        "The URL browsers and SDKs use to reach Polku (for the analytics.js settings "
        "endpoint). Empty: taken from each request's Host header.",
    ),
    Setting(
        "readiness_timeout",
        2.0,
        "Seconds each GET /readyz check (state store, log) may take before it counts as "
        "failed; keep it below the probe's own timeout.",
        float,
    ),
    Setting(
        "signal_rules",
        "",
        "A YAML file of buying-signal rules (docs/signals.md#rules). Empty: the rules shipped "
        "with Polku (src/polku/signals/rules/default.yaml). Checked at start.",
    ),
    Setting(
        "smtp_url",
        "",
        "Where journeys send email: smtp://user:password@host:port (STARTTLS when the server "
        "offers it) or smtps://... (TLS from the start). Empty: email steps are recorded as "
        "failed with the reason `channel_not_configured`.",
        secret=True,
    ),
    Setting(
        "smtp_from",
        "Polku <polku@localhost>",
        "The From address of journey email.",
    ),
    Setting(
        "sms_gateway_url",
        "",
        "The HTTP SMS gateway journeys post text messages to (docs/journeys.md#sms). Empty: "
        "SMS steps are recorded as failed with the reason `channel_not_configured`.",
    ),
    Setting(
        "sms_gateway_token",
        "",
        "Bearer token sent to the SMS gateway, and expected on its delivery reports and "
        "inbound messages.",
        secret=True,
    ),
    Setting(
        "sms_sender",
        "Polku",
        "The sender name or number of journey SMS.",
    ),
    Setting(
        "channel_secret",
        "",
        "Signs one-click unsubscribe links and tracked links. Empty: a random secret is made "
        "once and kept in POLKU_DATA_DIR/channel-secret (set it explicitly when several "
        "processes serve links).",
        secret=True,
    ),
    Setting(
        "shop_url",
        "",
        "The web shop's front page, for the links in journey messages that have no page of "
        'their own ("back to the shop"). Empty: such links are left out.',
    ),
    Setting(
        "journeys_tick",
        0.1,
        "Seconds between the journey timer runs that take due waits and queued sends.",
        float,
    ),
    Setting(
        "journeys_clock",
        "wall",
        "What time it is for journeys' timers and sends: `wall` (the machine's clock), or "
        "`events` (the newest event's time when that is later: `polku demo` uses it, as its "
        "simulated shoppers live faster than real time).",
        _choice("wall", "events"),
    ),
    Setting(
        "log_format",
        "text",
        "How every polku command logs to stderr: `text` (one readable line, for a terminal) "
        "or `json` (one JSON object per line with the event fields, for log collectors).",
        _choice("text", "json"),
    ),
)


_SECRETS = frozenset(s.name for s in SETTINGS if s.secret)


@dataclass(frozen=True)
class Settings:
    """The typed values of `SETTINGS`; build with `load()` or `Settings.build(**values)`."""

    database_url: Secret = field(default_factory=lambda: Secret(""))
    data_dir: Path = Path("./polku-data")
    host: str = "127.0.0.1"
    port: int = 8080
    sqlite_synchronous: str = "FULL"
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_body_bytes: int = 4 * 1024 * 1024
    auto_migrate: bool = True
    pipeline: str = "process"
    pipeline_batch: int = 2000
    log_url: str = ""
    nats_stream: str = "POLKU"
    nats_subject_prefix: str = "polku.events"
    partitions: int = 16
    nats_max_age_days: float = 30.0
    nats_replicas: int = 1
    nats_duplicate_window: float = 120.0
    lease_seconds: float = 15.0
    worker_batch: int = 500
    phone_region: str = "FI"
    shared_devices: frozenset[str] = frozenset()
    cors_origins: frozenset[str] = frozenset({"*"})
    public_url: str = ""
    readiness_timeout: float = 2.0
    signal_rules: str = ""
    log_format: str = "text"
    smtp_url: Secret = field(default_factory=lambda: Secret(""))
    smtp_from: str = "Polku <polku@localhost>"
    sms_gateway_url: str = ""
    sms_gateway_token: Secret = field(default_factory=lambda: Secret(""))
    sms_sender: str = "Polku"
    channel_secret: Secret = field(default_factory=lambda: Secret(""))
    journeys_tick: float = 0.1
    shop_url: str = ""
    journeys_clock: str = "wall"

    @classmethod
    def build(cls, **values: Any) -> Settings:
        """Settings from Python values (tests, CLI); secrets may be given as plain strings."""
        for key, value in list(values.items()):
            if key in _SECRETS and isinstance(value, str):
                values[key] = Secret(value)
            if key == "data_dir" and isinstance(value, str):
                values[key] = Path(value)
        return cls(**values)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL to connect to; the embedded SQLite file when none is set."""
        url = self.database_url.reveal()
        if url:
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'polku.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def uses_nats(self) -> bool:
        """Production mode: the log is a NATS JetStream stream."""
        return self.log_url.startswith(("nats://", "tls://"))

    def replace(self, **values: Any) -> Settings:
        return dataclasses.replace(self, **values)


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every `POLKU_*` variable once into `Settings`; `overrides` win (CLI options)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None:
            continue
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{setting.env}={raw!r} is not valid: {exc}") from exc
        values[setting.name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.build(**values)
