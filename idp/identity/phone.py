"""Mainland mobile numbers: the one definition every form, service and API schema uses."""

from __future__ import annotations

import re

# ASCII digits only: \d would also accept full-width and other Unicode digits.
MOBILE = "1[3-9][0-9]{9}"
# For Python's re: \Z, not $, since $ also matches before a trailing newline.
PHONE_PATTERN = rf"^{MOBILE}\Z"
# For JSON Schema (ECMA-262 regular expressions have no \Z; there $ is the end of input).
PHONE_SCHEMA_PATTERN = f"^{MOBILE}$"
PHONE_LENGTH = 11


def is_phone(value: object) -> bool:
    """True for an 11-digit mainland mobile number written in ASCII digits."""
    return isinstance(value, str) and re.fullmatch(MOBILE, value) is not None
