"""Round codes: short, easy to read aloud and type, hard to guess.

9 characters from a 31-character alphabet without 0/O, 1/I/L: 31**9 ≈ 2.6e13 codes (44.6 bits).
Shown in groups of three (K7P-QX4-MRT); typed in any case, with or without spaces and dashes.
"""

from __future__ import annotations

import secrets

from kqv_demo.errors import UserInputError

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 9


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(typed: str) -> str:
    """The code as stored, from what a person typed; a clear message when it cannot be one."""
    code = "".join(ch for ch in typed.upper() if ch not in " -\t")
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        raise UserInputError(
            f"{typed.strip()[:40]!r} is not a round code: codes have {CODE_LENGTH} letters and digits "
            "(no 0, O, 1, I or L), like K7P-QX4-MRT."
        )
    return code


def format_code(code: str) -> str:
    return "-".join(code[i:i + 3] for i in range(0, len(code), 3))
