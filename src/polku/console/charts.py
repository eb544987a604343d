"""Charts drawn on the server as inline SVG: no script, no network, nothing vendored.

Three shapes cover the console's pictures: `bars` (one value per label: stock per store,
signals per route), `lines` (series over time: signals and conversions per day) and
`funnel` (a journey's steps, each bar the share of the first). Each chart is an `<svg
role="img">` with a `<title>` naming it and a `<desc>` stating every value in words, so a
screen reader reads what the eye sees; colours pass 3:1 against white (WCAG non-text
contrast). Values are formatted by the caller's `fmt` (the page's locale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Final

from markupsafe import Markup

__all__ = ["COLOURS", "bars", "funnel", "lines"]

COLOURS: Final = ("#0b5cad", "#b35900", "#2e7d32", "#8e24aa", "#a40e26", "#00695c")
_FONT: Final = 'font-family="system-ui, sans-serif" font-size="13" fill="#1a1a1a"'


def _plain(value: float) -> str:
    return f"{value:g}"


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
    )
    return Markup(head + "".join(body) + "</svg>")


def bars(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = _plain,
    width: int = 640,
    colour: str = COLOURS[0],
) -> Markup:
    """Horizontal bars, one per (label, value), longest first as given."""
    label_w, row_h, top = 180, 28, 8
    height = top * 2 + row_h * max(len(rows), 1)
    peak = max((v for _, v in rows), default=0.0) or 1.0
    span = width - label_w - 90
    body: list[str] = []
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        length = max(span * value / peak, 1.0 if value else 0.0)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" {_FONT}>'
            f"{escape(label[:28])}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 18}" {_FONT}>{escape(fmt(value))}</text>'
        )
    desc = "; ".join(f"{label}: {fmt(value)}" for label, value in rows)
    return _svg(width, height, title, desc, body)


def funnel(
    steps: Sequence[tuple[str, float]],
    *,
    title: str,
    percent: Callable[[float], str],
    fmt: Callable[[float], str] = _plain,
    width: int = 640,
) -> Markup:
    """A funnel: each step a bar with its count and its share of the first step."""
    first = steps[0][1] if steps else 0.0

    def label(value: float) -> str:
        share = percent(value / first) if first else percent(0.0)
        return f"{fmt(value)} ({share})"

    rows = list(steps)
    chart = bars(rows, title=title, fmt=label, width=width, colour=COLOURS[2])
    return chart


def lines(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    fmt: Callable[[float], str] = _plain,
    width: int = 640,
    height: int = 240,
) -> Markup:
    """One line per (name, values) over the x `labels` (e.g. days), with a legend."""
    left, right, top, bottom = 48, 12, 12, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, values in series for v in values), default=0.0) or 1.0
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#767676"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" {_FONT}>{escape(fmt(peak))}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" {_FONT}>'
        f"{escape(fmt(0))}</text>",
    ]
    step = max(1, n // 6)
    for i in range(0, len(labels), step):
        body.append(
            f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" {_FONT}>'
            f"{escape(labels[i])}</text>"
        )
    for k, (name, values) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
        )
        for i, v in enumerate(values):
            body.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        lx = left + k * 150
        body.append(
            f'<rect x="{lx}" y="{height - 20}" width="14" height="14" fill="{colour}"/>'
            f'<text x="{lx + 20}" y="{height - 8}" {_FONT}>{escape(name[:18])}</text>'
        )
    desc = "; ".join(
        f"{name}: " + ", ".join(f"{lab} {fmt(v)}" for lab, v in zip(labels, values, strict=False))
        for name, values in series
    )
    return _svg(width, height, title, desc, body)
