"""OpenID Connect steps this relying party adds around Authlib's Flask client.

Read in Authlib 1.9.10 (``FlaskOAuth2App.authorize_access_token`` → ``parse_id_token``): it
checks ``state``, sends the PKCE verifier, verifies the ID token signature against the JWKS
(algorithms limited to the provider's ``id_token_signing_alg_values_supported``), ``exp`` and
``iat`` (120 s leeway), ``nonce``, ``azp`` (required and equal to our client_id when ``aud`` is
not just us), ``at_hash`` when present, and ``iss`` against the *discovered* issuer. It does not
compare the discovered issuer with the configured one (Discovery §4.3), does not require ``aud``
to contain our client_id (``aud=other, azp=us`` passes), ignores the RFC 9207 ``iss``
authorization response parameter, and silently skips validation when no ID token comes back.
Those gaps are the ``check_*`` steps and the explicit claims options below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_client import FlaskOAuth2App, OAuthError
from flask import current_app, render_template, request, session
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from .config import Config
from .errors import RpError

OAUTH_EXTENSION = "authlib.integrations.flask_client"
CONFIG_EXTENSION = "maintenance_fund.config"
LOGIN_KEY = "login"
NEXT_KEY = "next_url"


@dataclass(frozen=True)
class LoginRequest:
    """What a (possibly third-party initiated) login asks for beyond a plain login."""

    login_hint: str | None = None
    next_url: str | None = None
    register: bool = False  # 机构注册: prompt=create, the provider's UKey login and wizard


def current_config() -> Config:
    """The settings this app was created with (kept in ``app.extensions``, not a global)."""
    config: Config = current_app.extensions[CONFIG_EXTENSION]
    return config


def idp_client() -> FlaskOAuth2App:
    """The Authlib client registered as ``idp`` in ``create_app``."""
    client: FlaskOAuth2App = current_app.extensions[OAUTH_EXTENSION].idp
    return client


def load_metadata(config: Config) -> dict[str, Any]:
    """The discovery document (fetched once per process), refused if issued for another issuer."""
    metadata: dict[str, Any] = idp_client().load_server_metadata()
    check_discovered_issuer(metadata, config)
    return metadata


def check_discovered_issuer(metadata: Mapping[str, Any], config: Config) -> None:
    """OIDC Discovery §4.3: the ``issuer`` returned MUST equal the one used to fetch it."""
    if metadata.get("issuer") != config.issuer:
        description = f"discovered {metadata.get('issuer')!r}, configured {config.issuer!r}"
        raise RpError("discovery_mismatch", description=description, status=502)


def check_response_issuer(
    args: Mapping[str, str], metadata: Mapping[str, Any], config: Config
) -> None:
    """RFC 9207 §2.4: reject an authorization response from another issuer (mix-up defence).

    Runs before the code is sent anywhere, so a code meant for another provider never reaches ours.
    """
    issuer = args.get("iss")
    if issuer is None:
        if metadata.get("authorization_response_iss_parameter_supported"):
            raise RpError("issuer_mismatch", description="missing iss parameter")
        return
    if issuer != config.issuer:
        raise RpError("issuer_mismatch", description=f"iss={issuer!r}")


def id_token_claims_options(config: Config) -> dict[str, Any]:
    """Claims checks for ``parse_id_token``: ``iss`` is the configured issuer, ``aud`` holds us.

    Passing options replaces Authlib's default (``iss`` only), so both are spelled out here
    (OIDC Core §3.1.3.7 steps 2 and 3).
    """
    return {
        "iss": {"essential": True, "value": config.issuer},
        "aud": {"essential": True, "value": config.client_id},
        "sub": {"essential": True},
    }


def parse_login_request(args: Mapping[str, str], config: Config) -> LoginRequest:
    """Read third-party initiated login parameters (OIDC Core §4); a plain login has none.

    ``iss`` must be our provider; ``target_link_uri`` must stay inside this app so the
    endpoint is not an open redirector.
    """
    issuer = args.get("iss")
    if issuer is None:
        return LoginRequest()
    if issuer != config.issuer:
        raise RpError("untrusted_initiator", description=f"iss={issuer!r}")
    target = args.get("target_link_uri") or None
    if target is not None and not is_own_url(target, config):
        raise RpError("invalid_target", description=f"target_link_uri={target!r}")
    return LoginRequest(login_hint=args.get("login_hint") or None, next_url=target)


def is_own_url(url: str, config: Config) -> bool:
    """True when ``url`` has this app's scheme, host and port, and lies under its base path."""
    target, base = urlsplit(url), urlsplit(config.base_url)
    same_origin = (target.scheme, target.netloc) == (base.scheme, base.netloc)
    return same_origin and (target.path + "/").startswith(base.path.rstrip("/") + "/")


def start_login(config: Config, login_request: LoginRequest) -> Response:
    """Redirect to the authorization endpoint: code flow, PKCE S256 and nonce (via Authlib)."""
    load_metadata(config)
    session.pop(NEXT_KEY, None)
    if login_request.next_url:
        session[NEXT_KEY] = login_request.next_url
    extra = {"login_hint": login_request.login_hint} if login_request.login_hint else {}
    if login_request.register:
        # Initiating User Registration via OpenID Connect 1.0: the provider shows the UKey login
        # and, for an organisation not yet registered, the registration wizard, then returns here.
        extra["prompt"] = "create"
    response: Response = idp_client().authorize_redirect(redirect_uri=config.redirect_uri, **extra)
    return response


def complete_login(config: Config) -> dict[str, Any]:
    """Exchange the code and validate the ID token; raise ``RpError`` with nothing stored."""
    check_response_issuer(request.args, load_metadata(config), config)
    client = idp_client()
    try:
        token: dict[str, Any] = client.authorize_access_token(
            claims_options=id_token_claims_options(config)
        )
    except OAuthError as error:
        # Authlib raises on ``error=`` before touching the stored state; drop it either way.
        client.framework.clear_state_data(session, request.args.get("state"))
        raise RpError(str(error.error), description=error.description) from error
    except JoseError as error:
        raise id_token_error(error) from error
    if not token.get("userinfo"):
        raise RpError("missing_id_token")
    return token


def id_token_error(error: JoseError) -> RpError:
    """An ID token that failed a check: say which check, never store anything."""
    return RpError("invalid_id_token", description=f"{error.error}: {error.description}")


def store_login(token: Mapping[str, Any]) -> str | None:
    """Replace the whole session with the new login; return where the user wanted to go.

    Clearing first means nothing from before the login (fixation, stale CSRF token) survives.
    """
    next_url = session.get(NEXT_KEY)
    session.clear()
    session[LOGIN_KEY] = login_record(token, claims=dict(token["userinfo"]))
    return next_url


def login_record(token: Mapping[str, Any], *, claims: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of a token response the pages, refresh and logout need (cookie space is small)."""
    return {
        "id_token": token.get("id_token"),
        "access_token": token.get("access_token"),
        "refresh_token": token.get("refresh_token"),
        "expires_at": token.get("expires_at"),
        "userinfo": dict(claims),
    }


def refresh_login(config: Config, login: Mapping[str, Any]) -> dict[str, Any]:
    """Use the refresh token once and return the replacement record (the provider rotates it)."""
    refresh_token = login.get("refresh_token")
    if not refresh_token:
        raise RpError("no_refresh_token")
    load_metadata(config)
    try:
        # scope=None keeps Authlib from re-sending the configured scope; omitted means "as granted".
        token: dict[str, Any] = idp_client().fetch_access_token(
            grant_type="refresh_token", refresh_token=refresh_token, scope=None
        )
    except OAuthError as error:
        raise RpError(str(error.error), description=error.description) from error
    claims = refreshed_claims(config, token, login)
    record = login_record(token, claims=claims)
    record["id_token"] = record["id_token"] or login.get("id_token")
    record["refresh_token"] = record["refresh_token"] or refresh_token
    return record


def refreshed_claims(
    config: Config, token: Mapping[str, Any], login: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate a new ID token from a refresh (OIDC Core §12.2): same iss, aud and sub."""
    if not token.get("id_token"):
        return dict(login["userinfo"])
    try:
        claims = idp_client().parse_id_token(
            token, nonce=None, claims_options=id_token_claims_options(config)
        )
    except JoseError as error:
        raise id_token_error(error) from error
    if claims.get("sub") != login["userinfo"].get("sub"):
        raise RpError("invalid_id_token", description="sub changed on refresh")
    return dict(claims)


def logout_response(config: Config, id_token: str | None) -> Response:
    """RP-initiated logout: send the browser to ``end_session_endpoint`` with a fresh state."""
    metadata = load_metadata(config)
    if not metadata.get("end_session_endpoint"):
        return Response(render_template("logged_out.html"))
    response: Response = idp_client().logout_redirect(
        post_logout_redirect_uri=config.post_logout_redirect_uri,
        id_token_hint=id_token,
        client_id=config.client_id,
    )
    return response


def check_logout_state() -> None:
    """The state echoed to ``/logged-out`` must be the one this browser sent (Logout §3)."""
    try:
        idp_client().validate_logout_response()
    except OAuthError as error:
        raise RpError("invalid_logout_state", description=error.description) from error
