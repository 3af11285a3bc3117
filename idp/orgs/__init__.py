"""Organisations: identities, operator memberships, the registration wizard (journey 1), legacy
accounts, the org admin console (操作员管理, 用户审核) and the public join request."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the registration wizard, the console under /org/, the /join pages and the
    management API under /api/v1/ (the CLI group is registered in ``idp.cli``)."""
    from idp.orgs import api, console, join
    from idp.orgs.views import bp

    app.register_blueprint(bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(join.bp)
    app.register_blueprint(api.bp)
