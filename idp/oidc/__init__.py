"""The OpenID Connect protocol layer (Authlib)."""

from __future__ import annotations

from flask import Flask

from idp.config import Settings

PROTOCOL_ENDPOINTS = (
    "oidc.openid_configuration",
    "oidc.jwks",
    "oidc.token",
    "oidc.revoke",
    "oidc.introspect",
    "oidc.userinfo",
    "oidc.register",
    "oidc.client_configuration",
)


def init_app(app: Flask, settings: Settings) -> None:
    from idp.auth import continuation, credentials
    from idp.auth import session as login_session
    from idp.extensions import serves_machines
    from idp.oidc import backchannel, client_cache, frontchannel, interaction
    from idp.oidc.server import build_protector, build_server
    from idp.oidc.tokens import revoke_on_credentials_change, revoke_on_logout
    from idp.oidc.views import bp

    credentials.changed.connect(revoke_on_credentials_change)
    login_session.logged_out.connect(revoke_on_logout)
    login_session.logged_out.connect(frontchannel.on_logout)
    continuation.install_hand_back(app, interaction.resume_url)
    app.jinja_env.globals["logout_frames"] = frontchannel.logout_frames
    app.extensions["idp.oauth"] = build_server(app, settings)
    app.extensions["idp.protector"] = build_protector()
    app.register_blueprint(bp)
    backchannel.init_app(app)
    client_cache.init_app(app)
    # Relying parties' servers call these, never a browser: no session or language cookies, no
    # widened form-action (interaction.allow_redirect_in_form_action, run by idp.pipeline).
    serves_machines(app, endpoints=PROTOCOL_ENDPOINTS)
