"""SMS gateway interface: one verb, ``send``, which delivers or raises ``SmsError``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from flask_babel import lazy_gettext as _l

from idp.errors import IdpError


class SmsError(IdpError):
    """The gateway refused or could not be reached; nothing was delivered."""

    code = "sms_unavailable"
    status = 503
    message = _l("短信发送失败，请稍后再试")


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    purpose: str  # "login", "initial_password", ...
    text: str  # the rendered text, as the user reads it
    params: dict[str, str] = field(default_factory=dict)  # template parameters for vendor APIs
    code: str = ""  # the one-time value carried, kept for the dev outbox only


class SmsGateway(Protocol):
    def send(self, message: SmsMessage) -> None:
        """Deliver ``message`` or raise ``SmsError``. Never returns a status flag."""
