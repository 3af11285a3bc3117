"""Organisations: identities, operator memberships, the registration wizard (journey 1) and
legacy accounts."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the registration wizard (its CLI group is registered in ``idp.cli``)."""
    from idp.orgs.views import bp

    app.register_blueprint(bp)
