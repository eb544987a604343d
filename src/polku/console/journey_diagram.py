"""A journey's flow drawn on the server as inline SVG: a box per step, arrows between them.

Steps stand in a column in the order they are written, which is the order a marketer reads
them; an arrow to the step written next goes straight down, every other arrow (an `else`,
a `wait_for` timeout, a split's arms, a jump back) takes a lane of its own on the right,
labelled where it leaves its step. Every path ends at a box: a step or *end*. Like
`charts`, the picture is an `<svg role="img">` whose `<title>` names it and whose `<desc>`
says every step and where it goes, so a screen reader hears the flow the eye sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

from polku.journeys.conditions import AnyOf, Condition, Test
from polku.journeys.definition import (
    END,
    Branch,
    Journey,
    Send,
    Split,
    Step,
    Wait,
    WaitFor,
    WaitUntil,
)

__all__ = ["WORDS", "diagram", "duration", "edges", "summary"]

WORDS: Final = (
    "then",
    "else",
    "on_event",
    "on_timeout",
    "end",
    "wait",
    "wait_until",
    "wait_for",
    "if",
    "split",
    "send",
    "goes_to",
)
"""The words a caller gives `diagram` in its language (the console's `diagram_<word>`)."""

_FONT: Final = 'font-family="system-ui, sans-serif" fill="#1a1a1a"'
_BOX_W: Final = 300
_BOX_H: Final = 48
_GAP: Final = 34
_LEFT: Final = 16
_TOP: Final = 12
_LANE: Final = 26
_LABEL_ROOM: Final = 90
_FILL: Final = {
    "send": "#e8f1fb",
    "if": "#fdf1e6",
    "split": "#f4eaf7",
    "wait": "#eef6ee",
    "wait_until": "#eef6ee",
    "wait_for": "#eef6ee",
}
_STROKE: Final = "#4a4a4a"


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow from step `source` to `target` (a step id or `end`), with its label key
    (``then``, ``else``, ``on_event``, ``on_timeout``, a split's share, or empty)."""

    source: str
    target: str
    label: str


def duration(ms: int) -> str:
    """`ms` in the units journeys are written in: 1d, 3h, 30m, 45s."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _test(test: Test) -> str:
    if isinstance(test, Condition):
        value = "" if test.value is None else f" {test.value}"
        return f"{test.field} {test.op}{value}"
    assert isinstance(test, AnyOf)
    return "(" + " | ".join(_test(t) for t in test.tests) + ")"


def kind_of(step: Step) -> str:
    if isinstance(step, Send):
        return "send"
    if isinstance(step, Branch):
        return "if"
    if isinstance(step, Split):
        return "split"
    if isinstance(step, WaitFor):
        return "wait_for"
    if isinstance(step, WaitUntil):
        return "wait_until"
    return "wait"


def summary(step: Step, words: Mapping[str, str]) -> str:
    """What the step does, in one short line: `send email: abandoned_cart`, `wait 1h`."""
    word = words.get(kind_of(step), kind_of(step))
    if isinstance(step, Send):
        template = step.template if isinstance(step.template, str) else ""
        return f"{word} {step.kind}" + (f": {template}" if template else "")
    if isinstance(step, Branch):
        return f"{word} " + " & ".join(_test(t) for t in step.tests)
    if isinstance(step, Split):
        return f"{word} " + " / ".join(f"{weight:g}%" for weight, _ in step.branches)
    if isinstance(step, WaitFor):
        events = " | ".join(step.match.events)
        return f"{word} {events} ({duration(step.timeout_ms)})"
    if isinstance(step, WaitUntil):
        return f"{word} {step.hour:02d}:{step.minute:02d}"
    assert isinstance(step, Wait)
    return f"{word} {duration(step.ms)}"


def edges(journey: Journey) -> list[Edge]:
    """Every arrow of the flow, in the order of the steps."""
    found: list[Edge] = []
    for step in journey.steps:
        targets = journey.successors(step)
        if isinstance(step, Branch):
            labels = ["then", "else"]
        elif isinstance(step, WaitFor):
            labels = ["on_event", "on_timeout"]
        elif isinstance(step, Split):
            labels = [f"{weight:g}%" for weight, _ in step.branches]
        else:
            labels = [""]
        found.extend(Edge(step.id, t, label) for t, label in zip(targets, labels, strict=True))
    return found


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def diagram(
    journey: Journey, *, title: str, words: Mapping[str, str], marked: str | None = None
) -> Markup:
    """The flow of `journey` as an SVG; `words` holds the labels of `WORDS` in the page's
    language; the step `marked` (one with a problem) is outlined in red."""
    ids = [s.id for s in journey.steps]
    rows = {step_id: i for i, step_id in enumerate([*ids, END])}
    flow = edges(journey)

    def top(step_id: str) -> int:
        return _TOP + rows[step_id] * (_BOX_H + _GAP)

    # Arrows to the step written next go straight down; the others get a lane each.
    lanes: dict[int, int] = {}
    for n, edge in enumerate(flow):
        adjacent = rows[edge.target] == rows[edge.source] + 1
        first_down = adjacent and not any(
            e.source == edge.source and rows[e.target] == rows[e.source] + 1 for e in flow[:n]
        )
        if not first_down:
            lanes[n] = len(lanes)
    width = _LEFT + _BOX_W + _LABEL_ROOM + _LANE * (len(lanes) + 1)
    height = top(END) + _BOX_H + _TOP
    body = [
        '<defs><marker id="journey-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{_STROKE}"/></marker></defs>'
    ]
    for n, edge in enumerate(flow):
        label = words.get(edge.label, edge.label)
        source_y, target_y = top(edge.source), top(edge.target)
        if n not in lanes:
            x = _LEFT + _BOX_W // 2
            body.append(
                f'<line x1="{x}" y1="{source_y + _BOX_H}" x2="{x}" y2="{target_y - 2}" '
                f'stroke="{_STROKE}" stroke-width="1.5" marker-end="url(#journey-arrow)"/>'
            )
            if label:
                body.append(
                    f'<text x="{x + 6}" y="{source_y + _BOX_H + 20}" font-size="12" {_FONT}>'
                    f"{escape(label)}</text>"
                )
            continue
        right = _LEFT + _BOX_W
        lane_x = right + _LABEL_ROOM + _LANE * lanes[n]
        edge_in = _LEFT + _BOX_W // 2 + 60 if edge.target == END else right
        # Several lanes out of one step (a split's arms) leave it one above the other.
        k = sum(1 for m in lanes if m < n and flow[m].source == edge.source)
        out_y, in_y = source_y + 16 + 14 * (k % 3), target_y + _BOX_H // 3
        body.append(
            f'<path d="M{right},{out_y} H{lane_x} V{in_y} H{edge_in + 2}" fill="none" '
            f'stroke="{_STROKE}" stroke-width="1.5" marker-end="url(#journey-arrow)"/>'
        )
        if label:
            body.append(
                f'<text x="{right + 6}" y="{out_y - 4}" font-size="12" {_FONT}>'
                f"{escape(_clip(label, 12))}</text>"
            )
    lines: list[str] = []
    for step in journey.steps:
        y = top(step.id)
        text = summary(step, words)
        outline = ' stroke="#a40e26" stroke-width="3"' if step.id == marked else ""
        stroke = "" if outline else f' stroke="{_STROKE}"'
        body.append(
            f'<g class="journey-step" data-step="{escape(step.id)}">'
            f"<title>{escape(step.id)}: {escape(text)}</title>"
            f'<rect x="{_LEFT}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="{_FILL[kind_of(step)]}"{stroke}{outline}/>'
            f'<text x="{_LEFT + 10}" y="{y + 19}" font-size="14" font-weight="700" {_FONT}>'
            f"{escape(_clip(step.id, 36))}</text>"
            f'<text x="{_LEFT + 10}" y="{y + 38}" font-size="12" {_FONT}>'
            f"{escape(_clip(text, 44))}</text></g>"
        )
        goes = ", ".join(
            (f"{words.get(e.label, e.label)} " if e.label else "")
            + (words.get("end", END) if e.target == END else e.target)
            for e in flow
            if e.source == step.id
        )
        lines.append(f"{step.id} ({text}) {words.get('goes_to', '->')} {goes}")
    end_y = top(END)
    body.append(
        f'<g class="journey-step" data-step="{END}">'
        f'<rect x="{_LEFT + _BOX_W // 2 - 60}" y="{end_y}" width="120" height="{_BOX_H}" '
        f'rx="24" fill="#f4f6f8" stroke="{_STROKE}"/>'
        f'<text x="{_LEFT + _BOX_W // 2}" y="{end_y + 29}" text-anchor="middle" '
        f'font-size="14" {_FONT}>{escape(words.get("end", END))}</text></g>'
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(title)}</title><desc>{escape('; '.join(lines))}</desc>"
    )
    return Markup(head + "".join(body) + "</svg>")
