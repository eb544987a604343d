"""Write docs/settings.md from polku.settings.SETTINGS (a test checks it is current)."""

from __future__ import annotations

from pathlib import Path

from polku.settings import SETTINGS

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def render() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting is an environment variable, read once at start-up "
        "(`polku settings` prints this list). Generated from `polku/settings.py` by "
        "`scripts/gen_settings_doc.py`.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default
        if isinstance(default, frozenset):
            default = ",".join(sorted(default))
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        lines.append(f"| `{s.env}` | {shown} | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
