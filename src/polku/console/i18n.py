"""The console's words in Finnish and English, the language of a request, dates in each.

A small catalogue in code rather than gettext files: the console has a few dozen strings,
both languages are reviewed together in one place, and a missing translation fails the
tests (`text` raises `KeyError`) instead of showing the key. The language is the user's
setting, else the browser's `Accept-Language` (Finnish or English, by quality), else English.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["LOCALES", "MESSAGES", "format_time", "pick_locale", "text"]

LOCALES: Final = ("fi", "en")
DEFAULT_LOCALE: Final = "en"
# Times are shown in Finnish time until workspaces carry a time zone of their own.
_ZONE: Final = ZoneInfo("Europe/Helsinki")
_MONTHS_EN: Final = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "console": {"en": "Polku console", "fi": "Polku-konsoli"},
    "sign_in": {"en": "Sign in", "fi": "Kirjaudu sisään"},
    "sign_out": {"en": "Sign out", "fi": "Kirjaudu ulos"},
    "email": {"en": "Email", "fi": "Sähköposti"},
    "password": {"en": "Password", "fi": "Salasana"},
    "signed_in_as": {"en": "Signed in as", "fi": "Kirjautuneena"},
    "role": {"en": "Role", "fi": "Rooli"},
    "role_admin": {"en": "Administrator", "fi": "Ylläpitäjä"},
    "role_marketer": {"en": "Marketer", "fi": "Markkinoija"},
    "role_agent": {"en": "Customer-service agent", "fi": "Asiakaspalvelija"},
    "role_store_staff": {"en": "Store staff", "fi": "Myymälähenkilökunta"},
    "stores": {"en": "Stores", "fi": "Myymälät"},
    "you_may_use": {"en": "You may use", "fi": "Käytettävissäsi"},
    "nothing_yet": {
        "en": "Nothing in the console is open to your role yet.",
        "fi": "Roolillesi ei ole vielä avoinna konsolin osia.",
    },
    "home": {"en": "Home", "fi": "Etusivu"},
    "area_signals": {"en": "Buying signals", "fi": "Ostosignaalit"},
    "area_signals_help": {
        "en": "Customers showing buying intent, routed to you: claim one and record the outcome.",
        "fi": "Ostoaikeita osoittavat asiakkaat, ohjattu sinulle: ota asiakas ja kirjaa tulos.",
    },
    "area_journeys": {"en": "Journeys", "fi": "Asiakaspolut"},
    "area_journeys_help": {
        "en": "Automated journeys with their status (read-only for now).",
        "fi": "Automaattiset asiakaspolut ja niiden tila (toistaiseksi vain luku).",
    },
    "queue": {"en": "Queue", "fi": "Jono"},
    "queue_agents": {"en": "Customer service", "fi": "Asiakaspalvelu"},
    "queue_automation": {"en": "Automation", "fi": "Automaatio"},
    "queue_store": {"en": "Store {store}", "fi": "Myymälä {store}"},
    "live_note": {
        "en": "The list refreshes by itself every few seconds.",
        "fi": "Lista päivittyy itsestään muutaman sekunnin välein.",
    },
    "no_signals": {"en": "No signals in this queue.", "fi": "Jonossa ei ole signaaleja."},
    "signal": {"en": "Signal", "fi": "Signaali"},
    "when": {"en": "When", "fi": "Milloin"},
    "customer": {"en": "Customer", "fi": "Asiakas"},
    "products": {"en": "Products", "fi": "Tuotteet"},
    "why": {"en": "Why", "fi": "Miksi"},
    "status": {"en": "Status", "fi": "Tila"},
    "score": {"en": "Score", "fi": "Pisteet"},
    "status_open": {"en": "Open", "fi": "Avoin"},
    "status_claimed": {"en": "Claimed by {who}", "fi": "Ottanut: {who}"},
    "status_acknowledged": {"en": "In progress by {who}", "fi": "Työn alla: {who}"},
    "status_closed": {"en": "Closed", "fi": "Suljettu"},
    "outcome": {"en": "Outcome", "fi": "Tulos"},
    "outcome_contacted": {"en": "Contacted", "fi": "Otettu yhteyttä"},
    "outcome_reserved": {"en": "Reserved", "fi": "Varattu"},
    "outcome_sold": {"en": "Sold", "fi": "Myyty"},
    "outcome_not_interested": {"en": "Not interested", "fi": "Ei kiinnostunut"},
    "claim": {"en": "Claim", "fi": "Ota asiakas"},
    "acknowledge": {"en": "Acknowledge", "fi": "Kuittaa"},
    "record_outcome": {"en": "Record outcome", "fi": "Kirjaa tulos"},
    "journey": {"en": "Journey", "fi": "Polku"},
    "trigger": {"en": "Trigger", "fi": "Käynnistäjä"},
    "version": {"en": "Version", "fi": "Versio"},
    "enabled": {"en": "Enabled", "fi": "Käytössä"},
    "disabled": {"en": "Disabled", "fi": "Pois käytöstä"},
    "no_journeys": {"en": "No journeys yet.", "fi": "Asiakaspolkuja ei vielä ole."},
    "language": {"en": "Language", "fi": "Kieli"},
    "change": {"en": "Change", "fi": "Vaihda"},
    "error": {"en": "Something went wrong", "fi": "Jokin meni vikaan"},
    "forbidden": {"en": "Not allowed", "fi": "Ei sallittu"},
    "forbidden_page": {
        "en": "Your role ({role}) may not use this page.",
        "fi": "Roolisi ({role}) ei salli tätä sivua.",
    },
    "forbidden_queue": {
        "en": "You may not see the queue {queue}: it belongs to another store or team.",
        "fi": "Et voi nähdä jonoa {queue}: se kuuluu toiselle myymälälle tai tiimille.",
    },
    "forbidden_signal": {
        "en": "Signal {signal} is not on a queue you work.",
        "fi": "Signaali {signal} ei ole sinun jonossasi.",
    },
    "csrf_failed": {
        "en": "The form has expired or did not come from this console (CSRF check). "
        "Reload the page and try again.",
        "fi": "Lomake on vanhentunut tai ei tullut tästä konsolista (CSRF-tarkistus). "
        "Lataa sivu uudelleen ja yritä uudestaan.",
    },
    "signed_out_note": {
        "en": "Your session has ended; sign in again.",
        "fi": "Istuntosi on päättynyt; kirjaudu uudelleen.",
    },
    "wrong_credentials": {
        "en": "Wrong email or password.",
        "fi": "Väärä sähköposti tai salasana.",
    },
    "too_many_sign_ins": {
        "en": "Too many wrong passwords for this email: sign-in is paused for 15 minutes. "
        "An admin can set a new password.",
        "fi": "Liian monta väärää salasanaa tälle sähköpostille: kirjautuminen on tauolla "
        "15 minuuttia. Ylläpitäjä voi asettaa uuden salasanan.",
    },
    "back_home": {"en": "Back to the console's home", "fi": "Takaisin konsolin etusivulle"},
    "not_found": {"en": "Not found", "fi": "Ei löytynyt"},
}


def text(locale: str, key: str, **values: str) -> str:
    """The message `key` in `locale`, with `{name}` placeholders filled from `values`."""
    message = MESSAGES[key][locale]
    return message.format(**values) if values else message


def pick_locale(user_locale: str | None, accept_language: str | None) -> str:
    """The user's own setting, else the best of Finnish and English the browser accepts."""
    if user_locale in LOCALES:
        return user_locale
    best, best_q = DEFAULT_LOCALE, -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in LOCALES:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        # Equal qualities keep the browser's order.
        if quality > best_q or (quality == best_q and position == 0):
            best, best_q = language, quality
    return best


def format_time(locale: str, at_ms: int) -> str:
    """An epoch-ms time in Finnish time: `2.12.2026 klo 9.05` or `2 Dec 2026, 09:05`."""
    moment = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(_ZONE)
    if locale == "fi":
        return f"{moment.day}.{moment.month}.{moment.year} klo {moment.hour}.{moment.minute:02d}"
    month = _MONTHS_EN[moment.month - 1]  # not strftime's %b, which follows the C locale
    return f"{moment.day} {month} {moment.year}, {moment.hour:02d}:{moment.minute:02d}"
