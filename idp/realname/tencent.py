"""Tencent Cloud (腾讯云) real-name check: FaceID ``CheckPhoneAndName`` (手机号二要素核验).

API 3.0, service ``faceid``, host ``faceid.tencentcloudapi.com``, version ``2018-03-01``, POST
with a JSON body ``{"Mobile": "<11 digits>", "Name": "<name>"}``, signed with TC3-HMAC-SHA256
(``idp.vendors.tencent``). No ``X-TC-Region`` is sent: written on the understanding that FaceID's
phone checks are not regional; this was not checked against the reference page or a live
endpoint.

The answer is HTTP 200 with ``{"Response": {"Result": "<code>", "Description": ..., "RequestId":
...}}``, or ``{"Response": {"Error": {"Code": ..., "Message": ...}, "RequestId": ...}}``.
``Result`` codes, as the official SDK models document them (``CheckPhoneAndNameResponse.Result``
in tencentcloud-sdk-java/-go/-ruby, which are generated from the API reference):

- charged: ``0`` 验证结果一致 (MATCH), ``1`` 验证结果不一致 (MISMATCH);
- not charged: ``-1`` 查无记录, ``-2`` 引擎未知错误, ``-3`` 引擎服务异常, ``-4`` 姓名校验不通过,
  ``-5`` 手机号码不合法, ``-6`` 认证次数超过当日限制, ``-13`` 该号段不支持验证.

Only ``0`` and ``1`` are verdicts. ``-4`` is the format check of the name, not a comparison with
the carrier's record (it is not charged; the ``-4`` "信息不一致" of the three-element
``PhoneVerification`` is another API), so it is "unavailable" like every other code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from idp.config import Settings
from idp.realname.carrier import CarrierRealNameVerifier, require_settings
from idp.realname.interface import RealNameUnavailableError, Verdict
from idp.vendors.client import TIMEOUT_SECONDS, vendor_message
from idp.vendors.tencent import Action, parse_answer, require_no_error, signed_headers

ACTION = Action(service="faceid", name="CheckPhoneAndName", version="2018-03-01")
DEFAULT_ENDPOINT = "https://faceid.tencentcloudapi.com/"
VERDICTS = {"0": Verdict.MATCH, "1": Verdict.MISMATCH}
NO_VERDICT = {
    "-1": "查无记录 (no record)",
    "-2": "引擎未知错误 (engine error)",
    "-3": "引擎服务异常 (engine unavailable)",
    "-4": "姓名校验不通过 (name refused by the format check)",
    "-5": "手机号码不合法 (invalid phone number)",
    "-6": "认证次数超过当日限制 (daily limit reached)",
    "-13": "该号段不支持验证 (number range not supported)",
}


def verdict_of(answer: Mapping[str, Any]) -> Verdict:
    """``Result`` 0 or 1 as a verdict; an ``Error`` or any other code is "unavailable"."""
    require_no_error(answer, error=RealNameUnavailableError)
    result = answer.get("Result")
    if isinstance(result, str) and result in VERDICTS:
        return VERDICTS[result]
    meaning = NO_VERDICT.get(result) if isinstance(result, str) else None
    described = meaning or vendor_message(answer.get("Description")) or "undocumented code"
    raise RealNameUnavailableError(detail=f"tencent Result={result}: {described}")


class TencentRealNameVerifier(CarrierRealNameVerifier):
    """``RealNameVerifier`` through Tencent Cloud FaceID ``CheckPhoneAndName``."""

    vendor = "tencent"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(endpoint=endpoint, timeout=timeout)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.host = urlsplit(endpoint).netloc

    @classmethod
    def from_settings(cls, settings: Settings) -> TencentRealNameVerifier:
        require_settings(settings, backend="tencent")
        return cls(
            secret_id=settings.realname_access_key_id,
            secret_key=settings.realname_access_key_secret,
            endpoint=settings.realname_endpoint or DEFAULT_ENDPOINT,
            timeout=settings.realname_timeout,
        )

    def check(self, *, name: str, phone: str) -> Verdict:
        body = request_body(name=name, phone=phone)
        response = self.post(body, self.headers(body, timestamp=int(time.time())))
        return verdict_of(parse_answer(response, error=RealNameUnavailableError))

    def headers(self, body: bytes, *, timestamp: int) -> dict[str, str]:
        """The signed common headers; no ``X-TC-Region`` (see the module docstring)."""
        return signed_headers(
            ACTION,
            body,
            host=self.host,
            secret_id=self.secret_id,
            secret_key=self.secret_key,
            timestamp=timestamp,
        )


def request_body(*, name: str, phone: str) -> bytes:
    """``CheckPhoneAndName`` parameters as compact UTF-8 JSON (the bytes that are signed)."""
    payload = {"Mobile": phone, "Name": name}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
