"""SMS gateway selected by ``IDP_SMS_BACKEND``."""

from __future__ import annotations

from flask import Flask

from idp import context
from idp.backends import SMS_GATEWAYS, load_backend
from idp.config import Settings
from idp.sms.interface import SmsError, SmsGateway, SmsMessage

BACKENDS = SMS_GATEWAYS

__all__ = ["SmsError", "SmsGateway", "SmsMessage", "gateway", "init_app"]


def init_app(app: Flask, settings: Settings) -> None:
    cls = load_backend(BACKENDS, settings.sms_backend)
    app.extensions["idp.sms"] = cls.from_settings(settings)
    if settings.dev_mode and settings.sms_backend == "outbox":
        from idp.sms.dev_views import bp

        app.register_blueprint(bp)


def gateway() -> SmsGateway:
    value: SmsGateway = context.app().extensions["idp.sms"]
    return value
