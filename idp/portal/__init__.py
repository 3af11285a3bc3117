"""The portal: after login, the relying parties this account may enter (OIDC Core §4)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.portal import account
    from idp.portal.views import bp

    app.register_blueprint(bp)
    app.register_blueprint(account.bp)
