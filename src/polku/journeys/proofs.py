"""Test sends ("proofs"): a journey's email step rendered for a sample person and sent to
the marketer who asks, to see the message as a customer would.

A proof writes nothing: nobody is enrolled, no send is recorded and the journey's numbers
do not change. It renders with the same context and content as the sender
(`polku.journeys.sender`), for the chosen profile (or a person with no profile: the
template's fallbacks), with untracked links and no unsubscribe link (the address is the
marketer's own, not the customer's), and hands it to the configured email channel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from polku.channels.base import Message, SendResult
from polku.channels.registry import Channels
from polku.errors import InvalidField, NotFound
from polku.identity.identifiers import IdentityConfig
from polku.journeys.content import Content
from polku.journeys.context import Links, message_context
from polku.journeys.definition import Send
from polku.journeys.queries import get_journey, version_of
from polku.profiles.queries import find_by_identifier, resolve

__all__ = ["Proof", "find_person", "send_proof"]

SAMPLE_PROFILE = "sample-profile"
"""The profile id a proof renders for when none is chosen (no such profile: fallbacks)."""


@dataclass(frozen=True, slots=True)
class Proof:
    """What a proof did: where it went, its subject, and the channel's answer."""

    to: str
    subject: str
    profile_id: str
    result: SendResult


def find_person(conn: Connection, workspace_id: str, given: str, identity: IdentityConfig) -> str:
    """The profile holding `given`, a profile id or an email address; NotFound otherwise."""
    given = given.strip()
    if "@" in given:
        found = find_by_identifier(conn, workspace_id, "email", given, identity)
        if found is not None:
            return found[0]
    else:
        holder = resolve(conn, workspace_id, given)
        if holder is not None:
            return holder
    raise NotFound(
        f"No profile {given[:80]!r}.",
        field="profile",
        hint="Give a profile id or the email address the customer gave.",
        message_id="unknown_profile",
        params={"profile": given[:80]},
    )


def _untracked(url: Any) -> str:
    return "" if url is None else str(url)


def send_proof(
    conn: Connection,
    workspace_id: str,
    key: str,
    step_id: str,
    *,
    to: str,
    channels: Channels,
    identity: IdentityConfig,
    profile_id: str | None = None,
    subject_prefix: str = "",
    content: Content | None = None,
) -> Proof:
    """Render the email step `step_id` of journey `key` (its live version) for
    `profile_id` (None: a sample person) and send it to `to`. Raises NotFound for an unknown
    journey, step or profile, InvalidField for a step that is not an email or a template
    that cannot render; the channel's answer is in `Proof.result` (never raises for it)."""
    state = get_journey(conn, workspace_id, key)
    journey = version_of(conn, workspace_id, key, int(state["live_version"]))
    step = None
    if journey is not None and step_id in {s.id for s in journey.steps}:
        step = journey.step(step_id)
    if step is None:
        raise NotFound(
            f"Journey {key!r} has no step {step_id[:80]!r}.",
            field="step",
            hint="Pick a send step of the journey's live version.",
            message_id="unknown_journey_step",
            params={"journey": key, "step": step_id[:80]},
        )
    if not isinstance(step, Send) or step.kind != "email" or step.template is None:
        raise InvalidField(
            f"Step {step_id!r} does not send an email; only email steps can be test-sent.",
            field="step",
            hint="Pick a step written as `send: email`.",
            message_id="proof_not_email",
            params={"step": step_id},
        )
    person = profile_id or SAMPLE_PROFILE
    send_id = "proof-" + uuid.uuid4().hex
    links = Links(channels.base_url, channels.secret, workspace_id, person, send_id)
    context = dict(
        message_context(
            conn,
            workspace_id,
            person,
            event=None,
            send_id=send_id,
            links=links,
            purpose=step.purpose,
            identity=identity,
        )
    )
    context.update(
        track=_untracked,
        unsubscribe_url="",
        journey={"key": key, "step": step_id},
    )
    rendered = (content or Content()).render(step.template, "email", context)
    subject = f"{subject_prefix}{rendered.subject}"
    message = Message(
        channel="email",
        to=to,
        text=rendered.text,
        idempotency_key=send_id,
        workspace_id=workspace_id,
        profile_id=person,
        purpose=step.purpose,
        subject=subject,
        html=rendered.html,
        locale=rendered.locale,
    )
    return Proof(to, subject, person, channels.email.send(message))
