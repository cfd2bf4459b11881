"""Instructor keys: random, shown once, stored only as a salted PBKDF2-SHA256 hash."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

ITERATIONS = 200_000
_SCHEME = "pbkdf2_sha256"


def new_key() -> str:
    return secrets.token_urlsafe(16)


def hash_key(key: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """`pbkdf2_sha256$ITERATIONS$SALT_HEX$HASH_HEX` for storage."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)
    return f"{_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def key_matches(key: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != _SCHEME:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


@functools.cache
def dummy_hash() -> str:
    """Checked against when a round code is unknown, so that case takes as long as a wrong key."""
    return hash_key("not a real key", salt=b"\0" * 16)
