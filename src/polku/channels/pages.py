"""The pages a message's recipient sees: the unsubscribe question, its confirmation, and
a link that does not work; in Finnish and English.

The language is the message's (the link's `locale`), else the browser's first choice of
Finnish or English, else both on one page. The pages are small, self-contained HTML (no
scripts, no external styles), because they must work from any mail client's browser.
"""

from __future__ import annotations

from html import escape
from typing import Final

__all__ = ["LANGUAGES", "confirm_page", "done_page", "error_page", "languages"]

LANGUAGES: Final = ("fi", "en")

_PURPOSES: Final = {
    "fi": {"marketing": "markkinointiviestit", "transactional": "palveluviestit"},
    "en": {"marketing": "marketing messages", "transactional": "service messages"},
}
_CHANNELS: Final = {
    "fi": {"email": "sähköpostilla", "sms": "tekstiviestillä", "*": "missään kanavassa"},
    "en": {"email": "by email", "sms": "by text message", "*": "on any channel"},
}
_TEXT: Final = {
    "fi": {
        "title": "Viestien peruminen",
        "ask": "Haluatko perua {what} {how}?",
        "button": "Peru tilaus",
        "done_title": "Tilaus peruttu",
        "done": "Et saa enää {what} {how}. Voit tilata ne uudelleen asiakastililtäsi.",
        "error_title": "Linkki ei toimi",
        "error": "Tämä linkki on virheellinen tai vanhentunut. Kopioi koko linkki viestistä.",
    },
    "en": {
        "title": "Unsubscribe",
        "ask": "Do you want to stop getting {what} {how}?",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done": "You will no longer get {what} {how}. You can subscribe again in your account.",
        "error_title": "This link does not work",
        "error": "This link is broken or out of date. Copy the whole link from the message.",
    },
}


def languages(locale: str, accept_language: str | None) -> tuple[str, ...]:
    """Which of `LANGUAGES` to show: the link's locale, else the browser's preferred one
    (by its q values), else all of them."""
    base = locale.split("-")[0].split("_")[0].lower()
    if base in LANGUAGES:
        return (base,)
    best: tuple[float, str] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        lang = tag.strip().split("-")[0].lower()
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if lang in LANGUAGES and quality > 0:
            candidate = (quality - position * 1e-6, lang)
            if best is None or candidate > best:
                best = candidate
    return (best[1],) if best else LANGUAGES


def _what(lang: str, purpose: str, channel: str) -> dict[str, str]:
    return {
        "what": escape(_PURPOSES[lang].get(purpose, purpose)),
        "how": escape(_CHANNELS[lang].get(channel, channel)),
    }


def _page(langs: tuple[str, ...], title_key: str, sections: list[str]) -> str:
    title = " / ".join(_TEXT[lang][title_key] for lang in langs)
    return (
        f'<!doctype html>\n<html lang="{langs[0]}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem}"
        "section+section{border-top:1px solid #ccc;margin-top:2rem}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def confirm_page(langs: tuple[str, ...], purpose: str, channel: str) -> str:
    """The question, with a one-button form that POSTs back to the same URL (RFC 8058's
    body, so the POST is the same whether a mail client or this page sends it)."""
    sections = [
        f'<section lang="{lang}"><h1>{_TEXT[lang]["title"]}</h1>'
        f"<p>{_TEXT[lang]['ask'].format(**_what(lang, purpose, channel))}</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{_TEXT[lang]["button"]}</button></form></section>'
        for lang in langs
    ]
    return _page(langs, "title", sections)


def done_page(langs: tuple[str, ...], purpose: str, channel: str) -> str:
    sections = [
        f'<section lang="{lang}"><h1>{_TEXT[lang]["done_title"]}</h1>'
        f"<p>{_TEXT[lang]['done'].format(**_what(lang, purpose, channel))}</p></section>"
        for lang in langs
    ]
    return _page(langs, "done_title", sections)


def error_page(langs: tuple[str, ...], code: str, message: str) -> str:
    """A link that does not work, with the error's code and message (for support)."""
    sections = [
        f'<section lang="{lang}"><h1>{_TEXT[lang]["error_title"]}</h1>'
        f"<p>{_TEXT[lang]['error']}</p></section>"
        for lang in langs
    ]
    sections.append(f"<p><small><code>{escape(code)}</code>: {escape(message)}</small></p>")
    return _page(langs, "error_title", sections)
