"""The channel secret and the registry: a configured secret wins; otherwise one random
secret is made in the data folder (owner-only), and every caller, also racing ones, gets
the same; `Channels` hands out the configured channels and builds links they verify."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from polku.channels.base import Message, SendResult
from polku.channels.email import EmailChannel
from polku.channels.links import read_tracked, read_unsubscribe
from polku.channels.registry import Channels
from polku.channels.secret import SECRET_FILE, channel_secret
from polku.channels.sms import SmsChannel
from polku.channels.webhook import WebhookChannel
from polku.errors import InvalidField
from polku.settings import Settings


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path, channel_secret="configured-secret-0123456789")
    assert channel_secret(settings) == "configured-secret-0123456789"
    assert not (tmp_path / SECRET_FILE).exists()


def test_one_secret_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path / "data")
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(channel_secret(settings))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found[0]) >= 32
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [SECRET_FILE]  # no drafts left
    assert channel_secret(settings) == found[0]  # and after a restart


def test_a_damaged_secret_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("short\n")
    with pytest.raises(RuntimeError, match="POLKU_CHANNEL_SECRET"):
        channel_secret(Settings.build(data_dir=tmp_path))


class Recorder:
    """A channel of the test's own: records what it was given."""

    name = "sms"

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> SendResult:
        self.sent.append(message)
        return SendResult(ok=True, provider_id="r-1")


def test_the_registry(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path, public_url="https://polku.example.fi/")
    mine = Recorder()
    channels = Channels.from_settings(settings, sms=mine)
    try:
        assert isinstance(channels.get("email"), EmailChannel)
        assert channels.get("sms") is mine
        assert isinstance(channels.get("webhook"), WebhookChannel)
        with pytest.raises(InvalidField) as refused:
            channels.get("fax")
        assert refused.value.field == "send"
        assert channels.secret == channel_secret(settings)
        assert channels.base_url == "https://polku.example.fi"

        url = channels.unsubscribe_url("default", "p_1", "marketing", "email", locale="fi")
        link = read_unsubscribe(channels.secret, url.removeprefix("https://polku.example.fi/u/"))
        assert link is not None
        assert (link.profile_id, link.purpose, link.channel, link.locale) == (
            "p_1",
            "marketing",
            "email",
            "fi",
        )
        tracked = channels.tracked_url("default", "p_1", "s-1", "https://shop.example.fi/a?b=1")
        clicked = read_tracked(channels.secret, tracked.removeprefix("https://polku.example.fi/l/"))
        assert clicked is not None and clicked.url == "https://shop.example.fi/a?b=1"
        assert read_tracked("another-secret-0123456789", tracked.rsplit("/", 1)[1]) is None
    finally:
        channels.close()
    default = Channels.from_settings(Settings.build(data_dir=tmp_path, port=9090))
    assert default.base_url == "http://127.0.0.1:9090"
    assert isinstance(default.sms, SmsChannel)
