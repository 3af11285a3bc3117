"""Aliyun (阿里云) Short Message Service: ``SendSms`` of Dysms API 2017-05-25.

Requests are RPC style, form-encoded POST, signed with signature version 1.0 (HMAC-SHA1) as
Aliyun documents it for SMS ("签名机制", alibabacloud.com/help/zh/doc-detail/252839.htm; also
"Request syntax and signature method V2 for RPC APIs"):

1. sort every parameter except ``Signature`` by name;
2. percent-encode names and values as RFC 3986 (only ``A-Z a-z 0-9 - _ . ~`` stay; space is
   ``%20``, not ``+``) and join them as ``name=value`` with ``&``;
3. StringToSign = ``"POST&%2F&" + percentEncode(canonical query)``;
4. Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from idp.config import ConfigError, Settings
from idp.sms.interface import SmsError, SmsMessage
from idp.sms.messages import template_id, vendor_templates

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
REGION = "cn-hangzhou"  # Dysms is served from this region only, whatever IDP_SMS_REGION says
TIMEOUT_SECONDS = 5.0
REQUIRED_SETTINGS = (
    "sms_access_key_id",
    "sms_access_key_secret",
    "sms_sign_name",
    "sms_template_login",
    "sms_template_password",
)


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8, the form Aliyun's gateway signs.

    ``quote`` keeps only letters, digits and ``_.-~`` with ``safe=""``, which is exactly the
    unreserved set; it writes space as ``%20`` and ``*`` as ``%2A``, as Aliyun requires.
    """
    return quote(value, safe="")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted, encoded ``name=value`` pairs joined by ``&`` (step 1 and 2 of the algorithm)."""
    pairs = sorted((percent_encode(name), percent_encode(value)) for name, value in params.items())
    return "&".join(f"{name}={value}" for name, value in pairs)


def rpc_signature(params: Mapping[str, str], *, secret: str, method: str = "POST") -> str:
    """Signature version 1.0 of ``params`` (``Signature`` itself must not be among them)."""
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def require_settings(settings: Settings) -> None:
    """Refuse to start with a half-configured gateway instead of failing at the first login."""
    for name in REQUIRED_SETTINGS:
        if not getattr(settings, name):
            raise ConfigError(f"IDP_{name.upper()} must be set for IDP_SMS_BACKEND=aliyun")
    if (
        settings.sms_endpoint
        and not settings.dev_mode
        and not settings.sms_endpoint.startswith("https://")
    ):
        raise ConfigError("IDP_SMS_ENDPOINT must be an https URL outside development mode")


def parse_answer(response: requests.Response) -> dict[str, Any]:
    """The JSON object Aliyun answers with, also on 4xx; anything else is a failed send."""
    try:
        answer = response.json()
    except ValueError:
        raise SmsError(detail=f"aliyun HTTP {response.status_code}: answer is not JSON") from None
    if not isinstance(answer, dict):
        raise SmsError(detail=f"aliyun HTTP {response.status_code}: answer is not a JSON object")
    return answer


def check_answer(status: int, answer: Mapping[str, Any]) -> None:
    """Only HTTP 200 with ``"Code": "OK"`` is a delivery; the vendor code goes into ``detail``."""
    code = answer.get("Code")
    if status == 200 and code == "OK":
        return
    message = str(answer.get("Message", ""))[:200]
    raise SmsError(detail=f"aliyun HTTP {status} Code={code}: {message}")


class AliyunSmsGateway:
    """``SmsGateway`` through Aliyun Dysms; one ``requests.Session`` keeps connections alive."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        templates: dict[str, str],
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.templates = templates
        self.endpoint = endpoint
        self.timeout = timeout
        self.session = requests.Session()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeout: float = TIMEOUT_SECONDS
    ) -> AliyunSmsGateway:
        require_settings(settings)
        return cls(
            access_key_id=settings.sms_access_key_id,
            access_key_secret=settings.sms_access_key_secret,
            sign_name=settings.sms_sign_name,
            templates=vendor_templates(settings),
            endpoint=settings.sms_endpoint or DEFAULT_ENDPOINT,
            timeout=timeout,
        )

    def send(self, message: SmsMessage) -> None:
        """Deliver through ``SendSms`` or raise ``SmsError`` (vendor code, HTTP error, timeout)."""
        params = self.request_params(message)
        params["Signature"] = rpc_signature(params, secret=self.access_key_secret)
        status, answer = self._post(canonical_query(params))
        check_answer(status, answer)

    def request_params(self, message: SmsMessage) -> dict[str, str]:
        """Common parameters with a fresh nonce and timestamp, plus the ``SendSms`` ones."""
        return {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": REGION,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            "PhoneNumbers": message.phone,
            "SignName": self.sign_name,
            "TemplateCode": template_id(self.templates, message.purpose),
            "TemplateParam": json.dumps(message.params, ensure_ascii=False, separators=(",", ":")),
        }

    def _post(self, body: str) -> tuple[int, dict[str, Any]]:
        try:
            response = self.session.post(
                self.endpoint,
                data=body.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise SmsError(detail=f"aliyun unreachable: {type(error).__name__}") from error
        return response.status_code, parse_answer(response)
