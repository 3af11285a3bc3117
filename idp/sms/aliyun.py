"""Aliyun (阿里云) Short Message Service: ``SendSms`` of Dysms API 2017-05-25.

An RPC-style request signed with signature version 1.0 (``idp.vendors.aliyun``); the answer is
``{"Code": "OK", ...}`` on delivery and the vendor's error code otherwise.
"""

from __future__ import annotations

import json

from idp.config import ConfigError, Settings
from idp.sms.interface import SmsError, SmsMessage
from idp.sms.messages import template_id, vendor_templates
from idp.vendors.aliyun import (
    FORM_HEADERS,
    Action,
    common_params,
    parse_answer,
    require_ok,
    signed_body,
)
from idp.vendors.client import TIMEOUT_SECONDS, VendorClient

ACTION = Action(name="SendSms", version="2017-05-25")
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
REQUIRED_SETTINGS = (
    "sms_access_key_id",
    "sms_access_key_secret",
    "sms_sign_name",
    "sms_template_login",
    "sms_template_password",
)


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


class AliyunSmsGateway(VendorClient):
    """``SmsGateway`` through Aliyun Dysms; one ``requests.Session`` keeps connections alive."""

    vendor = "aliyun"
    error = SmsError

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
        super().__init__(endpoint=endpoint, timeout=timeout)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.templates = templates

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
        response = self.post(signed_body(params, secret=self.access_key_secret), FORM_HEADERS)
        answer = parse_answer(response, error=SmsError)
        require_ok(response.status_code, answer, error=SmsError)

    def request_params(self, message: SmsMessage) -> dict[str, str]:
        """Common parameters with a fresh nonce and timestamp, plus the ``SendSms`` ones."""
        return common_params(ACTION, access_key_id=self.access_key_id) | {
            "PhoneNumbers": message.phone,
            "SignName": self.sign_name,
            "TemplateCode": template_id(self.templates, message.purpose),
            "TemplateParam": json.dumps(message.params, ensure_ascii=False, separators=(",", ":")),
        }
