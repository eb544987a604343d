"""Gift card codes: unguessable, typed at a till, stored only as a hash.

A code is a bearer credential: whoever holds it can spend the card. So it is made of 80
random bits (`secrets`), shown once in full when the card is issued, and stored, like an
admin token, only as its SHA-256 digest, with the last four characters kept to tell cards
apart on a receipt or in the console (``**** **** **** 7KQ2``). A database dump or a copy
of the log then reveals no spendable code: 2^80 codes is far beyond guessing, online or
against the digests, so no salt or slow hash is needed (those protect low-entropy
passwords).

The alphabet is Crockford's base32 (no I, L, O, U): read aloud or typed from a paper card,
``O`` is read as ``0`` and ``I``/``L`` as ``1``; spaces, dashes and case do not matter.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

__all__ = ["LENGTH", "code_hash", "display", "masked", "new_code", "normalise"]

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH: Final = 16  # 16 x 5 bits = 80 random bits
_READ_AS: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh code, 16 characters of Crockford base32 (normalised form)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str) -> str | None:
    """`text` as a code in normal form, or None when it cannot be one."""
    cleaned = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    if len(cleaned) != LENGTH or any(c not in ALPHABET for c in cleaned):
        return None
    return cleaned


def code_hash(code: str) -> str:
    """The digest stored for a normalised code."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def display(code: str) -> str:
    """A normalised code in groups of four, as printed: ``7Q2M-...``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def masked(last4: str) -> str:
    """What is shown of a stored card's code."""
    return "****-****-****-" + last4
