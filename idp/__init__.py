"""统一认证登录平台: an OpenID Connect provider. ``create_app()`` builds the Flask app."""

from __future__ import annotations

from flask import Flask

from idp.config import Settings
from idp.proxies import TrustedProxies, parse_networks

# A form's CSRF token is good for an hour (then the page says it expired and is reloaded);
# a new login renews the token's secret (idp.auth.session.renew_csrf_token).
CSRF_TOKEN_LIFETIME = 3600


def create_app(settings: Settings | None = None) -> Flask:
    """Build the provider; reads ``IDP_*`` from the environment unless ``settings`` is given.
    In production mode it refuses to start (ConfigError) on any problem ``idp check`` reports."""
    from idp import (
        admin,
        audit,
        auth,
        branding,
        console,
        db,
        extensions,
        jsoncodec,
        logs,
        oidc,
        ops,
        orgs,
        pipeline,
        portal,
        realname,
        signing,
        sms,
        store,
        web,
    )
    from idp.oidc.published import PublishedDocuments
    from idp.sms import queue as sms_queue

    settings = settings or Settings.from_env()
    if not settings.dev_mode:
        from idp.ops.doctor import refuse_to_start

        refuse_to_start(settings)  # what `idp check` reports, as one ConfigError
    app = Flask(__name__, instance_path=str(settings.instance_dir), instance_relative_config=False)
    app.json = jsoncodec.JSONProvider(app)
    app.extensions["idp"] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="idp_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=CSRF_TOKEN_LIFETIME,
        WTF_CSRF_SSL_STRICT=False,
    )
    trusted = parse_networks(settings.trusted_proxies)
    # Discovery and the JWKS are replayed in front of Flask (idp/oidc/published.py).
    published = PublishedDocuments(app, app.wsgi_app)
    app.wsgi_app = TrustedProxies(published, trusted)  # type: ignore[method-assign]
    pipeline.init_app(app)  # the request hooks, first (idp/pipeline.py)
    logs.init_app(app, settings)
    db.init_app(app, settings.database_url)
    extensions.init_app(app)
    web.init_app(app)
    branding.init_app(app)
    store.init_app(app, settings)
    sms.init_app(app, settings)
    sms_queue.init_app(app, settings)
    realname.init_app(app, settings)
    signing.init_app(app, settings)
    audit.init_app(app)
    auth.init_app(app, settings)
    orgs.init_app(app)
    console.init_app(app)
    oidc.init_app(app, settings)
    portal.init_app(app)
    admin.init_app(app)
    ops.init_app(app)
    return app
