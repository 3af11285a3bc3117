"""Tencent Cloud (腾讯云) SMS: ``SendSms`` of API 2021-01-11, signed with TC3-HMAC-SHA256.

The signature follows Tencent Cloud API 3.0 "Signature v3" (签名方法 v3), POST with a JSON body:

    CanonicalRequest = "POST\\n/\\n\\n" + "content-type:<ct>\\nhost:<host>\\n" + "\\n"
                       + "content-type;host\\n" + hex(sha256(payload))
    StringToSign     = "TC3-HMAC-SHA256\\n" + timestamp + "\\n" + "<UTC date>/sms/tc3_request\\n"
                       + hex(sha256(CanonicalRequest))
    key              = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")
    Signature        = hex(HMAC-SHA256(key, StringToSign))
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from idp.config import ConfigError, Settings
from idp.sms.interface import SmsError, SmsMessage
from idp.sms.messages import template_id, vendor_templates

API_VERSION = "2021-01-11"
SERVICE = "sms"
ALGORITHM = "TC3-HMAC-SHA256"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"
TIMEOUT_SECONDS = 5.0
REQUIRED_SETTINGS = (
    "sms_access_key_id",
    "sms_access_key_secret",
    "sms_sign_name",
    "sms_app_id",
    "sms_region",
    "sms_template_login",
    "sms_template_password",
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def canonical_request(*, host: str, payload: bytes) -> str:
    """The POST canonical request: empty query, the two signed headers, the body's hash."""
    headers = f"content-type:{CONTENT_TYPE}\nhost:{host.lower()}\n"
    body_hash = hashlib.sha256(payload).hexdigest()
    return f"POST\n/\n\n{headers}\n{SIGNED_HEADERS}\n{body_hash}"


def credential_scope(timestamp: int, *, service: str = SERVICE) -> str:
    """``<date>/<service>/tc3_request``; the date is UTC, or requests fail around midnight."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return f"{date}/{service}/tc3_request"


def tc3_signature(
    *, secret_key: str, canonical: str, timestamp: int, service: str = SERVICE
) -> str:
    """Hex HMAC-SHA256 of the string to sign with the date/service-derived key."""
    scope = credential_scope(timestamp, service=service)
    hashed = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashed}"
    key = _hmac(("TC3" + secret_key).encode("utf-8"), scope.split("/")[0])
    for part in (service, "tc3_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def international(phone: str) -> str:
    """E.164 form Tencent expects; bare numbers are mainland China mobile numbers."""
    return phone if phone.startswith("+") else "+86" + phone


def require_settings(settings: Settings) -> None:
    """Refuse to start with a half-configured gateway instead of failing at the first login."""
    for name in REQUIRED_SETTINGS:
        if not getattr(settings, name):
            raise ConfigError(f"IDP_{name.upper()} must be set for IDP_SMS_BACKEND=tencent")
    if (
        settings.sms_endpoint
        and not settings.dev_mode
        and not settings.sms_endpoint.startswith("https://")
    ):
        raise ConfigError("IDP_SMS_ENDPOINT must be an https URL outside development mode")


def parse_answer(response: requests.Response) -> dict[str, Any]:
    """The ``Response`` object of Tencent's JSON answer; anything else is a failed send."""
    if response.status_code != 200:
        raise SmsError(detail=f"tencent HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise SmsError(detail="tencent answer is not JSON") from None
    inner = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(inner, dict):
        raise SmsError(detail="tencent answer has no Response object")
    return inner


def check_answer(answer: Mapping[str, Any]) -> None:
    """A request-level ``Error`` or a per-number status other than ``Ok`` is a failed send."""
    error = answer.get("Error")
    if isinstance(error, dict):
        raise SmsError(detail=f"tencent {error.get('Code')}: {str(error.get('Message', ''))[:200]}")
    statuses = answer.get("SendStatusSet")
    first = statuses[0] if isinstance(statuses, list) and statuses else None
    if not isinstance(first, dict):
        raise SmsError(detail="tencent answer has no SendStatusSet")
    if first.get("Code") != "Ok":
        raise SmsError(detail=f"tencent {first.get('Code')}: {str(first.get('Message', ''))[:200]}")


class TencentSmsGateway:
    """``SmsGateway`` through Tencent Cloud SMS; one ``requests.Session`` keeps connections alive."""

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        app_id: str,
        sign_name: str,
        region: str,
        templates: dict[str, str],
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id
        self.sign_name = sign_name
        self.region = region
        self.templates = templates
        self.endpoint = endpoint
        self.host = urlsplit(endpoint).netloc
        self.timeout = timeout
        self.session = requests.Session()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeout: float = TIMEOUT_SECONDS
    ) -> TencentSmsGateway:
        require_settings(settings)
        return cls(
            secret_id=settings.sms_access_key_id,
            secret_key=settings.sms_access_key_secret,
            app_id=settings.sms_app_id,
            sign_name=settings.sms_sign_name,
            region=settings.sms_region,
            templates=vendor_templates(settings),
            endpoint=settings.sms_endpoint or DEFAULT_ENDPOINT,
            timeout=timeout,
        )

    def send(self, message: SmsMessage) -> None:
        """Deliver through ``SendSms`` or raise ``SmsError`` (vendor code, HTTP error, timeout)."""
        payload = json.dumps(self.request_body(message), ensure_ascii=False, separators=(",", ":"))
        body = payload.encode("utf-8")
        check_answer(self._post(body, self.headers(body, timestamp=int(time.time()))))

    def request_body(self, message: SmsMessage) -> dict[str, Any]:
        """``SendSms`` parameters; template values are positional, in the order of ``params``."""
        return {
            "PhoneNumberSet": [international(message.phone)],
            "SmsSdkAppId": self.app_id,
            "SignName": self.sign_name,
            "TemplateId": template_id(self.templates, message.purpose),
            "TemplateParamSet": list(message.params.values()),
        }

    def headers(self, body: bytes, *, timestamp: int) -> dict[str, str]:
        """Common headers and the ``Authorization`` computed over exactly these headers."""
        canonical = canonical_request(host=self.host, payload=body)
        signature = tc3_signature(
            secret_key=self.secret_key, canonical=canonical, timestamp=timestamp
        )
        credential = f"{self.secret_id}/{credential_scope(timestamp)}"
        return {
            "Authorization": f"{ALGORITHM} Credential={credential}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }

    def _post(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = self.session.post(
                self.endpoint, data=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise SmsError(detail=f"tencent unreachable: {type(error).__name__}") from error
        return parse_answer(response)
