"""Real-name check (手机二要素校验): does this name belong to the holder of this phone number?"""

from __future__ import annotations

import enum
from typing import Protocol

from flask_babel import lazy_gettext as _l

from idp.errors import ServiceUnavailableError


class Verdict(enum.StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"


class RealNameUnavailableError(ServiceUnavailableError):
    """No verdict: a timeout, an error, or the carrier has no record. Never a mismatch."""

    code = "realname_unavailable"
    message = _l("校验服务暂不可用，请稍后再试")


class RealNameVerifier(Protocol):
    def verify(self, *, name: str, phone: str) -> Verdict:
        """MATCH or MISMATCH, or raise RealNameUnavailableError when no verdict can be had."""
