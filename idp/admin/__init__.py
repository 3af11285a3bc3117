"""The platform administration console under ``/admin/``: platform admin accounts with
password + TOTP login, their own short sessions, step-up before destructive actions
(docs/admin.md)."""

from __future__ import annotations

from flask import Flask, g


def forget_request_state() -> None:
    """Drop what an earlier request cached in ``g`` (an app context may span requests)."""
    for name in ("admin_session", "set_admin_cookie"):
        g.pop(name, None)


def init_app(app: Flask) -> None:
    # audit, clients, initial_tokens, orgs and legacy add their routes to views.bp when imported
    from idp.admin import audit, clients, initial_tokens, legacy, orgs, session, views  # noqa: F401

    # The admin cookie is written by idp.pipeline (session.write_cookie), which also runs
    # forget_request_state where an app context spans requests.
    app.register_blueprint(views.bp)
