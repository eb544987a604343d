"""The channel secret: the key that signs unsubscribe links, tracked links and SMS status URLs.

Set `POLKU_CHANNEL_SECRET` when several machines serve links. Without it, the first process
that needs one makes a random secret and keeps it in ``POLKU_DATA_DIR/channel-secret``
(readable by its owner only), so links in messages already sent stay valid across restarts,
and every process on the machine reads the same one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

from polku.settings import Settings

__all__ = ["SECRET_FILE", "channel_secret"]

SECRET_FILE: Final = "channel-secret"
_BYTES: Final = 32


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 16:
        raise RuntimeError(
            f"The channel secret in {path} is empty or shorter than 16 characters; delete the "
            "file to make a new one (links already sent stop working) or set "
            "POLKU_CHANNEL_SECRET."
        )
    return value


def channel_secret(settings: Settings) -> str:
    """`POLKU_CHANNEL_SECRET` when set, else the secret kept in the data folder (made on
    first use).

    The file is written whole under a temporary name and then hard-linked into place, which
    fails if another process got there first: then both read and use the winner's secret.
    """
    configured = settings.channel_secret.reveal()
    if configured:
        return configured
    path = settings.data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(6)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)
