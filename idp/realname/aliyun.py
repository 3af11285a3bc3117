"""Aliyun (阿里云) real-name check: 号码百科 (Cell Phone Number Service) ``TwoElementsVerification``.

Product Dytnsapi, host ``dytnsapi.aliyuncs.com``, version ``2020-02-17``, RPC style: a
form-encoded POST of the common parameters plus ``AuthCode`` (the 授权码 / authorization ID of
the application approved in the 号码百科 console), ``InputNumber``, ``Mask`` (``NORMAL``: name
and number in clear, over TLS) and ``Name``, signed with signature version 1.0
(``idp.vendors.aliyun``).

The answer is JSON ``{"Code": "OK", "Message": ..., "RequestId": ..., "Data": {"IsConsistent":
<int>, "BasicCarrier": ...}}``; any other ``Code`` (e.g. ``RequestFrequencyLimit``), also with
HTTP 4xx/5xx, is a refusal. ``IsConsistent`` as the official SDK models (alibabacloud
dytnsapi20200217, generated from the API reference) document it: ``1`` consistent (MATCH),
``0`` inconsistent (MISMATCH), ``2`` not found (查无, "unavailable"). Everything else is
"unavailable".

The authorization code is read from ``settings.realname_auth_code`` (``IDP_REALNAME_AUTH_CODE``);
until ``Settings`` has that field the backend refuses to start with a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.config import Settings
from idp.realname.carrier import CarrierRealNameVerifier, require_settings
from idp.realname.interface import RealNameUnavailableError, Verdict
from idp.vendors.aliyun import (
    FORM_HEADERS,
    Action,
    common_params,
    parse_answer,
    require_ok,
    signed_body,
)
from idp.vendors.client import TIMEOUT_SECONDS, vendor_message

ACTION = Action(name="TwoElementsVerification", version="2020-02-17")
DEFAULT_ENDPOINT = "https://dytnsapi.aliyuncs.com/"
AUTH_CODE_SETTING = "realname_auth_code"
VERDICTS = {1: Verdict.MATCH, 0: Verdict.MISMATCH}
NO_RECORD = 2


def consistency(value: object) -> int | None:
    """``IsConsistent`` as an int; JSON ``true`` is not ``1`` and a float is not a code."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value in {"0", "1", "2"}:
        return int(value)
    return None


def verdict_of(status: int, answer: Mapping[str, Any]) -> Verdict:
    """HTTP 200, ``Code`` OK and ``IsConsistent`` 1 or 0 is a verdict; the rest is "unavailable"."""
    require_ok(status, answer, error=RealNameUnavailableError)
    data = answer.get("Data")
    value = consistency(data.get("IsConsistent")) if isinstance(data, dict) else None
    if value in VERDICTS:
        return VERDICTS[value]
    if value == NO_RECORD:
        raise RealNameUnavailableError(detail="aliyun IsConsistent=2: 查无记录 (no record)")
    raise RealNameUnavailableError(
        detail=f"aliyun answer without a usable IsConsistent: {vendor_message(repr(data))}"
    )


class AliyunRealNameVerifier(CarrierRealNameVerifier):
    """``RealNameVerifier`` through Aliyun Dytnsapi ``TwoElementsVerification``."""

    vendor = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        auth_code: str,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(endpoint=endpoint, timeout=timeout)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.auth_code = auth_code

    @classmethod
    def from_settings(cls, settings: Settings) -> AliyunRealNameVerifier:
        auth_code = str(getattr(settings, AUTH_CODE_SETTING, "") or "")
        require_settings(settings, backend="aliyun", extra={AUTH_CODE_SETTING: auth_code})
        return cls(
            access_key_id=settings.realname_access_key_id,
            access_key_secret=settings.realname_access_key_secret,
            auth_code=auth_code,
            endpoint=settings.realname_endpoint or DEFAULT_ENDPOINT,
            timeout=settings.realname_timeout,
        )

    def check(self, *, name: str, phone: str) -> Verdict:
        params = self.request_params(name=name, phone=phone)
        response = self.post(signed_body(params, secret=self.access_key_secret), FORM_HEADERS)
        answer = parse_answer(response, error=RealNameUnavailableError)
        return verdict_of(response.status_code, answer)

    def request_params(self, *, name: str, phone: str) -> dict[str, str]:
        """Common parameters with a fresh nonce and timestamp, plus the action's own."""
        return common_params(ACTION, access_key_id=self.access_key_id) | {
            "AuthCode": self.auth_code,
            "InputNumber": phone,
            "Mask": "NORMAL",
            "Name": name,
        }
