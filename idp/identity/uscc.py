"""Unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters with a check
character computed over the first 17 (weights 3^i mod 31, alphabet without I, O, Z, S, V)."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def check_character(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    """True for an 18-character code from the allowed alphabet with a correct check character."""
    if len(value) != 18 or any(c not in ALPHABET for c in value):
        return False
    return check_character(value[:17]) == value[17]
