"""Tencent Cloud (腾讯云) SMS: ``SendSms`` of API 2021-01-11.

Signed with TC3-HMAC-SHA256 for service ``sms`` (``idp.vendors.tencent``); the answer lists one
status per number, ``"Code": "Ok"`` on delivery.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from idp.config import ConfigError, Settings
from idp.sms.interface import SmsError, SmsMessage
from idp.sms.messages import template_id, vendor_templates
from idp.vendors.client import TIMEOUT_SECONDS, VendorClient, vendor_message
from idp.vendors.tencent import Action, parse_answer, require_no_error, signed_headers

ACTION = Action(service="sms", name="SendSms", version="2021-01-11")
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
REQUIRED_SETTINGS = (
    "sms_access_key_id",
    "sms_access_key_secret",
    "sms_sign_name",
    "sms_app_id",
    "sms_region",
    "sms_template_login",
    "sms_template_password",
)


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


def check_answer(answer: Mapping[str, Any]) -> None:
    """A request-level ``Error`` or a per-number status other than ``Ok`` is a failed send."""
    require_no_error(answer, error=SmsError)
    statuses = answer.get("SendStatusSet")
    first = statuses[0] if isinstance(statuses, list) and statuses else None
    if not isinstance(first, dict):
        raise SmsError(detail="tencent answer has no SendStatusSet")
    if first.get("Code") != "Ok":
        message = vendor_message(first.get("Message"))
        raise SmsError(detail=f"tencent {first.get('Code')}: {message}")


class TencentSmsGateway(VendorClient):
    """``SmsGateway`` through Tencent Cloud SMS; one ``requests.Session`` keeps connections alive."""

    vendor = "tencent"
    error = SmsError

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
        super().__init__(endpoint=endpoint, timeout=timeout)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id
        self.sign_name = sign_name
        self.region = region
        self.templates = templates
        self.host = urlsplit(endpoint).netloc

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
        response = self.post(body, self.headers(body, timestamp=int(time.time())))
        check_answer(parse_answer(response, error=SmsError))

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
        """The signed common headers, plus the region SMS is sent from."""
        signed = signed_headers(
            ACTION,
            body,
            host=self.host,
            secret_id=self.secret_id,
            secret_key=self.secret_key,
            timestamp=timestamp,
        )
        return signed | {"X-TC-Region": self.region}
