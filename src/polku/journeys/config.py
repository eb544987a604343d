"""Each workspace's rules for every journey message: frequency caps, quiet hours, the global
holdout group and the time zone to use when a customer has none.

Stored as JSON in `journey_settings` (one row per workspace, edited through
``PUT /v1/journeys/settings``); a workspace without a row gets `DEFAULT`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import Connection, select

from polku.errors import InvalidField
from polku.journeys.conditions import parse_duration
from polku.journeys.tables import journey_settings

__all__ = [
    "DEFAULT",
    "Cap",
    "JourneyConfig",
    "bucket",
    "config_body",
    "config_of",
    "parse_config",
    "save_config",
]

_HOUR: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `limit` marketing messages on `channel` (``*``: all of them) per `window_ms`."""

    channel: str
    window_ms: int
    limit: int

    @property
    def label(self) -> str:
        hours = self.window_ms / _HOUR
        span = f"{hours / 24:g}d" if hours >= 24 else f"{hours:g}h"
        return f"{self.limit} {self.channel} per {span}"


@dataclass(frozen=True, slots=True)
class JourneyConfig:
    timezone: str = "Europe/Helsinki"
    holdout_percent: float = 5.0
    caps: tuple[Cap, ...] = (
        Cap("email", 16 * _HOUR, 1),
        Cap("email", 7 * 24 * _HOUR, 3),
        Cap("sms", 24 * _HOUR, 1),
        Cap("*", 7 * 24 * _HOUR, 5),
    )
    quiet_start: tuple[int, int] = (21, 0)
    quiet_end: tuple[int, int] = (8, 0)
    quiet_channels: tuple[str, ...] = ("sms",)


DEFAULT: Final = JourneyConfig()


def bucket(*parts: str) -> float:
    """A stable number in [0, 100) for `parts`: who is in a holdout, a control group or a
    split's branch (the same person always lands in the same place)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1_000_000 / 10_000


def _clock(raw: Any, field: str) -> tuple[int, int]:
    if isinstance(raw, str):
        hour, _, minute = raw.strip().partition(":")
        if hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60:
            return int(hour), int(minute)
    raise InvalidField(f"{field} {raw!r} is not a time of day.", field=field, hint='Write "21:00".')


def parse_config(raw: Any) -> JourneyConfig:
    """Check a settings body (`config_body`'s shape; missing keys keep their defaults)."""
    if not isinstance(raw, Mapping):
        raise InvalidField(
            "Journey settings are a JSON object.", field="body", hint='Send {"caps": [...]}.'
        )
    unknown = sorted(set(raw) - {"timezone", "holdout_percent", "caps", "quiet_hours"})
    if unknown:
        raise InvalidField(
            f"Unknown setting {unknown[0]!r}.",
            field=unknown[0],
            hint="Use timezone, holdout_percent, caps and quiet_hours.",
        )
    timezone = raw.get("timezone", DEFAULT.timezone)
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            f"Unknown time zone {timezone!r}.",
            field="timezone",
            hint="Use an IANA name such as Europe/Helsinki.",
        ) from None
    holdout = raw.get("holdout_percent", DEFAULT.holdout_percent)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 50:
        raise InvalidField(
            f"holdout_percent {holdout!r} is not from 0 to 49.",
            field="holdout_percent",
            hint="Write 5 to keep one person in twenty out of all marketing.",
        )
    caps = DEFAULT.caps
    if "caps" in raw:
        items = raw["caps"]
        if not isinstance(items, list):
            raise InvalidField(
                "caps is a list.", field="caps", hint='Send [{"channel": "email", ...}].'
            )
        found: list[Cap] = []
        for i, item in enumerate(items):
            where = f"caps[{i}]"
            if not isinstance(item, Mapping) or item.get("channel") not in (
                "email",
                "sms",
                "*",
            ):
                raise InvalidField(
                    f"{where} needs a channel: email, sms or *.",
                    field=f"{where}.channel",
                    hint='Write {"channel": "email", "per": "16h", "limit": 1}.',
                )
            limit = item.get("limit")
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise InvalidField(
                    f"{where}.limit {limit!r} is not a whole number.",
                    field=f"{where}.limit",
                    hint="Write limit: 1.",
                )
            try:
                window = parse_duration(item.get("per"), f"{where}.per")
            except Exception as exc:
                raise InvalidField(
                    f"{where}.per {item.get('per')!r} is not a duration.",
                    field=f"{where}.per",
                    hint="Write per: 16h, 1d or 7d.",
                ) from exc
            found.append(Cap(str(item["channel"]), window, limit))
        caps = tuple(found)
    quiet_start, quiet_end, quiet_channels = (
        DEFAULT.quiet_start,
        DEFAULT.quiet_end,
        DEFAULT.quiet_channels,
    )
    if "quiet_hours" in raw:
        quiet = raw["quiet_hours"]
        if quiet is None:
            quiet_channels = ()
        elif not isinstance(quiet, Mapping):
            raise InvalidField(
                "quiet_hours is an object or null.",
                field="quiet_hours",
                hint='Send {"start": "21:00", "end": "08:00", "channels": ["sms"]}.',
            )
        else:
            quiet_start = _clock(quiet.get("start", "21:00"), "quiet_hours.start")
            quiet_end = _clock(quiet.get("end", "08:00"), "quiet_hours.end")
            channels = quiet.get("channels", ["sms"])
            if not isinstance(channels, list) or not set(channels) <= {"email", "sms"}:
                raise InvalidField(
                    "quiet_hours.channels lists email and/or sms.",
                    field="quiet_hours.channels",
                    hint='Write ["sms"].',
                )
            quiet_channels = tuple(channels)
    return JourneyConfig(
        timezone=str(timezone),
        holdout_percent=float(holdout),
        caps=caps,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        quiet_channels=quiet_channels,
    )


def config_body(config: JourneyConfig) -> dict[str, Any]:
    def hhmm(value: tuple[int, int]) -> str:
        return f"{value[0]:02d}:{value[1]:02d}"

    return {
        "timezone": config.timezone,
        "holdout_percent": config.holdout_percent,
        "caps": [
            {"channel": c.channel, "per": f"{c.window_ms // 1000}s", "limit": c.limit}
            for c in config.caps
        ],
        "quiet_hours": {
            "start": hhmm(config.quiet_start),
            "end": hhmm(config.quiet_end),
            "channels": list(config.quiet_channels),
        },
    }


def config_of(conn: Connection, workspace_id: str) -> JourneyConfig:
    raw = conn.execute(
        select(journey_settings.c.config).where(journey_settings.c.workspace_id == workspace_id)
    ).scalar()
    return DEFAULT if raw is None else parse_config(orjson.loads(raw))


def save_config(conn: Connection, workspace_id: str, config: JourneyConfig) -> None:
    body = orjson.dumps(config_body(config), option=orjson.OPT_SORT_KEYS).decode()
    now = int(time.time() * 1000)
    updated = conn.execute(
        journey_settings.update()
        .where(journey_settings.c.workspace_id == workspace_id)
        .values(config=body, updated_at=now)
    )
    if not updated.rowcount:
        conn.execute(
            journey_settings.insert().values(workspace_id=workspace_id, config=body, updated_at=now)
        )
