"""上海市房屋维修资金管理系统 (demo): a relying party of the unified login platform.

It knows the provider only through its public protocol (discovery, authorization, token,
JWKS, end session) and never imports ``idp``, so it exercises the provider the way a real
relying party would.
"""

from __future__ import annotations

import os

from authlib.integrations.flask_client import OAuth
from flask import Flask
from werkzeug.wrappers import Response

from . import app as views
from . import backchannel, frontchannel, system
from .config import Config
from .oidc import CONFIG_EXTENSION
from .security import add_security_headers, csrf_token

__all__ = ["Config", "create_app"]

SESSION_COOKIE_NAME = "mf_rp_session"
# A provider that does not answer within this many seconds is reported as unreachable.
PROVIDER_TIMEOUT_SECONDS = 10


def create_app(config: Config | None = None) -> Flask:
    """Application factory; settings from ``RP_*`` environment variables unless given."""
    config = config or Config.from_env()
    allow_insecure_transport(config)
    app = Flask(__name__)
    configure_flask(app, config)
    register_client(app, config)
    views.init_app(app)
    backchannel.init_app(app, config.state_file)
    app.register_blueprint(frontchannel.bp)
    app.register_blueprint(system.bp)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def security_headers(response: Response) -> Response:
        return add_security_headers(response, config=config)

    return app


def allow_insecure_transport(config: Config) -> None:
    """Set ``AUTHLIB_INSECURE_TRANSPORT`` for a plain-http loopback (development) issuer only.

    ``Config`` refuses http on any other host, so this never opens a production deployment.
    The variable is process-wide; Authlib 1.9.10 already treats loopback http as secure, so it
    is kept for older Authlib versions and for explicitness.
    """
    if config.is_development:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"


def configure_flask(app: Flask, config: Config) -> None:
    """Session cookie that holds the tokens: own name, HttpOnly, SameSite=Lax, Secure on https.

    The own name matters in development: provider and RP share the host 127.0.0.1 and cookies
    ignore ports, so two cookies called ``session`` would overwrite each other.
    """
    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.base_url.startswith("https://"),
    )
    app.extensions[CONFIG_EXTENSION] = config


def register_client(app: Flask, config: Config) -> None:
    """Register the provider as Authlib client ``idp``: code flow, PKCE S256, client_secret_basic."""
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=config.client_id,
        client_secret=config.client_secret,
        server_metadata_url=config.server_metadata_url,
        client_kwargs={
            # The management API scopes serve the 系统管理 menus (org admins only, provider-side).
            "scope": "openid profile phone org.operators org.reviews",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "default_timeout": PROVIDER_TIMEOUT_SECONDS,
        },
    )
