"""`Channels`: the channels a process sends through, and the links its messages carry.

The journeys' sender asks `get(name)` for a message's channel and builds its unsubscribe
and tracked links here, so everything a send needs from the settings (SMTP, the gateway,
the channel secret, the public URL) is read once, in one place. Tests give their own
channels (a gateway in a thread, an SMTP server on a free port) through the constructor.
"""

from __future__ import annotations

from dataclasses import dataclass

from polku.channels.base import Channel
from polku.channels.email import EmailChannel
from polku.channels.links import tracked_url, unsubscribe_url
from polku.channels.secret import channel_secret
from polku.channels.sms import SmsChannel
from polku.channels.webhook import WebhookChannel
from polku.errors import InvalidField
from polku.settings import Settings

__all__ = ["Channels", "public_base_url"]


def public_base_url(settings: Settings) -> str:
    """The URL links in messages start with: `POLKU_PUBLIC_URL`, else where `polku serve`
    listens (right on a laptop; set the public URL anywhere else)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


@dataclass(frozen=True, slots=True)
class Channels:
    """The email, SMS and webhook channels, the channel secret and the links' base URL."""

    email: Channel
    sms: Channel
    webhook: Channel
    secret: str
    base_url: str

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        email: Channel | None = None,
        sms: Channel | None = None,
        webhook: Channel | None = None,
    ) -> Channels:
        """The channels `settings` configure; any of them may be given instead."""
        secret = channel_secret(settings)
        return cls(
            email=email or EmailChannel(settings),
            sms=sms or SmsChannel(settings, secret=secret),
            webhook=webhook or WebhookChannel(),
            secret=secret,
            base_url=public_base_url(settings),
        )

    def get(self, name: str) -> Channel:
        """The channel called `name` (``email``, ``sms``, ``webhook``)."""
        if name == "email":
            return self.email
        if name == "sms":
            return self.sms
        if name == "webhook":
            return self.webhook
        raise InvalidField(
            f"There is no channel {name[:40]!r}.",
            field="send",
            hint="Send through email, sms or webhook.",
        )

    def close(self) -> None:
        """Stop what the channels run in the background (the email channel's loop thread)."""
        for channel in (self.email, self.sms, self.webhook):
            close = getattr(channel, "close", None)
            if callable(close):
                close()

    def unsubscribe_url(
        self, workspace_id: str, profile_id: str, purpose: str, channel: str, locale: str = ""
    ) -> str:
        """The one-click unsubscribe link for a message (its ``List-Unsubscribe`` too)."""
        return unsubscribe_url(
            self.base_url,
            self.secret,
            workspace_id=workspace_id,
            profile_id=profile_id,
            purpose=purpose,
            channel=channel,
            locale=locale,
        )

    def tracked_url(self, workspace_id: str, profile_id: str, send_id: str, url: str) -> str:
        """`url` wrapped so that a click is recorded on the profile's timeline."""
        return tracked_url(
            self.base_url,
            self.secret,
            workspace_id=workspace_id,
            profile_id=profile_id,
            send_id=send_id,
            url=url,
        )
