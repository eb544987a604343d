"""Rewrite the event tables in docs/events.md from polku.collect.vocabulary.KNOWN_EVENTS.

Only the part between the markers `<!-- events:start -->` and `<!-- events:end -->` is
generated; the rest of the page is written by hand. A test fails when that part is stale:
run `.venv/bin/python scripts/gen_events_doc.py` after changing the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from polku.collect.vocabulary import (
    CATEGORIES,
    COMMON_PROPERTIES,
    KNOWN_EVENTS,
    EventSpec,
    PropertySpec,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
START = "<!-- events:start -->"
END = "<!-- events:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    """The heading anchor GitHub generates for `title`."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _property_table(
    properties: Mapping[str, PropertySpec], required: frozenset[str], *, skip_common: bool
) -> list[str]:
    lines = ["| property | type | required | meaning |", "|---|---|---|---|"]
    for key, spec in properties.items():
        if skip_common and COMMON_PROPERTIES.get(key) is spec:
            continue
        label = spec.label
        if spec.items is not None and spec.item_name:
            label = f"array of [{spec.item_name}](#{_anchor(spec.item_name + ' object')})"
        lines.append(
            f"| `{key}` | {label} | {'**yes**' if key in required else 'no'} "
            f"| {_cell(spec.description)} |"
        )
    return lines


def _item_objects() -> dict[str, PropertySpec]:
    """Each array item object (Product, Selection) by name, as it is first declared."""
    found: dict[str, PropertySpec] = {}
    for event in KNOWN_EVENTS.values():
        for spec in event.properties.values():
            if spec.items is not None and spec.item_name and spec.item_name not in found:
                found[spec.item_name] = spec
    return found


def _event_section(event: EventSpec) -> list[str]:
    lines = [f"#### {event.name}", "", event.description, ""]
    shown = [k for k, s in event.properties.items() if COMMON_PROPERTIES.get(k) is not s]
    if shown:
        lines += _property_table(event.properties, event.required, skip_common=True)
    else:
        lines.append("No properties of its own beyond the common ones.")
    lines.append("")
    return lines


def render() -> str:
    """The generated part of docs/events.md, without the markers."""
    lines = [
        "",
        "<!-- Generated from polku/collect/vocabulary.py by scripts/gen_events_doc.py; "
        "do not edit by hand. -->",
        "",
        "### Common properties",
        "",
        "Every known event may also carry these, with the same meaning everywhere. Store "
        "events list `store_id` again where they require it.",
        "",
        *_property_table(COMMON_PROPERTIES, frozenset(), skip_common=False),
        "",
    ]
    for name, spec in _item_objects().items():
        assert spec.items is not None
        lines += [
            f"### {name} object",
            "",
            f"Each item of an `array of {name}` property is a JSON object with these "
            "properties, checked item by item; a problem names the item's position, as in "
            "`properties.products[2].price`.",
            "",
            *_property_table(spec.items, frozenset(), skip_common=False),
            "",
        ]
    for category, (title, blurb) in CATEGORIES.items():
        events = [e for e in KNOWN_EVENTS.values() if e.category == category]
        lines += [f"### {title}", "", blurb, "", "| event | what it means |", "|---|---|"]
        lines += [f"| [{e.name}](#{_anchor(e.name)}) | {_cell(e.description)} |" for e in events]
        lines.append("")
        for event in events:
            lines += _event_section(event)
    return "\n".join(lines)


def update(text: str) -> str:
    """`text` (the whole page) with the generated part replaced by a fresh `render()`."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{DOC} must contain the markers {START} and {END}")
    return head + START + render() + END + tail


if __name__ == "__main__":
    DOC.write_text(update(DOC.read_text()))
    print(f"wrote {DOC}")
