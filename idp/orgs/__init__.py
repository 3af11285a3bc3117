"""Organisations' business: the registration wizard (journey 1) and legacy accounts, operator
management and join reviews (the services behind the console and the management API), and the
management API under ``/api/v1/org/``."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the registration wizard and the management API (the CLI group is registered
    in ``idp.cli``)."""
    from idp.extensions import serves_machines
    from idp.orgs import api
    from idp.orgs.views import bp

    app.register_blueprint(bp)
    app.register_blueprint(api.bp)
    serves_machines(app, blueprint=api.bp.name)  # bearer tokens: no browser cookies
