"""Authentication: who the user is (operator login now; certificate login builds on it)."""

from __future__ import annotations

from flask import Flask

from idp.auth import client, session, sms_delivery


def init_app(app: Flask) -> None:
    from idp.auth.views import bp

    app.register_blueprint(bp)
    sms_delivery.init_app(app)
    app.before_request(session.forget_request_state)
    app.after_request(session.write_cookie)
    app.after_request(client.write_browser_cookie)
