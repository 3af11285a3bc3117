"""Authentication: who the user is (operator login now; certificate login builds on it)."""

from __future__ import annotations

from flask import Flask

from idp.auth import sms_delivery
from idp.config import Settings


def init_app(app: Flask, settings: Settings) -> None:
    from idp.auth.cert.verify import check_configuration
    from idp.auth.views import bp

    check_configuration(settings)

    app.register_blueprint(bp)
    sms_delivery.init_app(app)
    # The session and browser-id cookies are written by idp.pipeline (session.write_cookie,
    # client.write_browser_cookie), which also forgets an earlier request's state.
