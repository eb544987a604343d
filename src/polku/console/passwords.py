"""Password hashing with argon2id (argon2-cffi's RFC 9106 defaults) and the password rules.

Only the hash is stored. `verify` re-hashes nothing itself; `needs_rehash` tells the caller
when the stored hash uses older parameters, so sign-in can upgrade it.
"""

from __future__ import annotations

import functools
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from polku.errors import InvalidField

__all__ = ["MIN_LENGTH", "check_password", "hash_password", "needs_rehash", "verify"]

MIN_LENGTH: Final = 10
MAX_LENGTH: Final = 1000
_HASHER: Final = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Verified against when the email is unknown, so that answer takes as long as a wrong
    password and timing does not tell which emails have accounts (made on first use)."""
    return _HASHER.hash("polku-console-no-such-user")


def check_password(password: str, field: str = "password") -> str:
    """`password` if it is acceptable, else `InvalidField` saying what to choose."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidField(
            f"The password has {len(password)} characters; it needs {MIN_LENGTH} to {MAX_LENGTH}.",
            field=field,
            code="weak_password",
            hint="Choose a longer passphrase, e.g. four unrelated words.",
        )
    if not password.strip():
        raise InvalidField("The password is only spaces.", field=field, code="weak_password")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash` (None: no such user; still costs a hash)."""
    try:
        return _HASHER.verify(stored_hash or _dummy(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
