"""What the cloud real-name adapters (``tencent``, ``aliyun``) share.

Settings checks, logging, and the rule of the interface: only a clear "consistent" or
"inconsistent" from the vendor is a verdict. A timeout, a transport or HTTP error, an unreadable
answer, a vendor error code and a "no record" answer all raise ``RealNameUnavailableError`` with
a ``detail`` naming the vendor code; none is a mismatch. Signing, the session and the reading of
the vendors' answers are in ``idp.vendors``.

Name and phone are personal data: logs and ``detail`` carry them masked only
(``idp.security.mask_name`` / ``mask_phone``), also when a vendor message echoes them.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping

from idp.config import ConfigError, Settings
from idp.realname.interface import RealNameUnavailableError, Verdict
from idp.security import mask_name, mask_phone
from idp.vendors.client import VendorClient

log = logging.getLogger(__name__)

REQUIRED_SETTINGS = ("realname_access_key_id", "realname_access_key_secret")


def require_settings(
    settings: Settings, *, backend: str, extra: Mapping[str, str] | None = None
) -> None:
    """Refuse to start half-configured instead of failing at the first operator added.

    ``extra`` maps further required setting names to their values, for settings that only one
    vendor needs.
    """
    values = {name: getattr(settings, name) for name in REQUIRED_SETTINGS} | dict(extra or {})
    for name, value in values.items():
        if not value:
            raise ConfigError(f"IDP_{name.upper()} must be set for IDP_REALNAME_BACKEND={backend}")
    if (
        settings.realname_endpoint
        and not settings.dev_mode
        and not settings.realname_endpoint.startswith("https://")
    ):
        raise ConfigError("IDP_REALNAME_ENDPOINT must be an https URL outside development mode")


def scrub(text: str, *, name: str, phone: str) -> str:
    """``text`` with the clear name and phone replaced by their masks (vendors echo inputs)."""
    for clear, masked in ((phone, mask_phone(phone)), (name, mask_name(name))):
        if clear.strip():
            text = text.replace(clear, masked)
    return text


class CarrierRealNameVerifier(VendorClient, ABC):
    """``RealNameVerifier`` over a vendor HTTP API: subclasses build the signed request and read
    the answer (``check``); this class owns masking and logging, ``VendorClient`` the session."""

    error = RealNameUnavailableError
    # The vendor APIs answer in place; a redirect would replay personal data to another host.
    follow_redirects = False

    def verify(self, *, name: str, phone: str) -> Verdict:
        """MATCH or MISMATCH from the vendor, else ``RealNameUnavailableError``."""
        try:
            verdict = self.check(name=name, phone=phone)
        except RealNameUnavailableError as error:
            error.detail = scrub(error.detail, name=name, phone=phone)
            log.warning(
                "real-name check (%s) for %s %s unavailable: %s",
                self.vendor,
                mask_name(name),
                mask_phone(phone),
                error.detail,
            )
            raise
        log.info(
            "real-name check (%s) for %s %s: %s",
            self.vendor,
            mask_name(name),
            mask_phone(phone),
            verdict.value,
        )
        return verdict

    @abstractmethod
    def check(self, *, name: str, phone: str) -> Verdict:
        """One vendor call: the verdict, or ``RealNameUnavailableError`` with the vendor code."""
