"""The Authlib authorization server and resource protector, built per app (STYLE 2.7)."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.flask_oauth2.requests import (
    FlaskJsonPayload,
    FlaskOAuth2Payload,
    FlaskOAuth2Request,
)
from authlib.integrations.flask_oauth2.signals import token_authenticated
from authlib.oauth2.rfc6749 import InsecureTransportError, JsonRequest, OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from flask import Flask, Request

from idp import audit, context, db
from idp.auth import session as login_session
from idp.config import Settings
from idp.oidc import grants
from idp.oidc.claims import SCOPES_SUPPORTED, SIGNING_ALGS
from idp.oidc.client_assertion import ClientSecretJwt, PrivateKeyJwt
from idp.oidc.clients import find_enabled_client
from idp.oidc.grants import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from idp.oidc.models import Client
from idp.oidc.presented import PresentedToken, find_presented, find_token
from idp.oidc.registration import ClientConfiguration, ClientRegistration
from idp.oidc.tokens import (
    access_token_lifetime,
    generate_token_value,
    save_token,
)
from idp.oidc.users import user_for
from idp.signing import key_store


def query_client(client_id: str) -> Client | None:
    return find_enabled_client(db.session(), client_id)


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking either token of a row ends it; a refresh token takes its family."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_token(db.session(), token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request: Any) -> None:
        from idp.oidc.tokens import revoke_family

        revoke_family(db.session(), token.family_id)
        audit.record(
            "oidc.token_revoked",
            actor=f"client:{token.client_id}",
            target=f"family:{token.family_id[:8]}",
        )


class Introspection(IntrospectionEndpoint):
    """RFC 7662: a client may introspect its own tokens; others only with ``introspection_allowed``."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_token(db.session(), token_string, token_type_hint)

    def check_permission(self, token: PresentedToken, client: Client, request: Any) -> bool:
        return token.client_id == client.client_id or client.may_introspect

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        # Authlib has answered for an expired or revoked one (``PresentedToken.is_expired``)
        if token.presented_as == "refresh_token":
            expires_at = token.refresh_expires_at
        else:
            expires_at = token.access_expires_at
        user = user_for(db.session(), token) if token.identity else None
        if expires_at is None or (token.identity and user is None):
            return {"active": False}
        body: dict[str, Any] = {
            "active": True,
            "client_id": token.client_id,
            "token_type": "Bearer",
            "scope": token.scope,
            "iat": int(token.issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "iss": context.app().extensions["idp"].issuer,
        }
        if user is not None:
            body["sub"] = user.subject
            if token.identity is not None:
                body["org_type"] = token.identity.org_type.value
                body["role"] = token.identity.role.value
        return body


class EndSession(EndSessionEndpoint):
    """RP-initiated logout: ends the login session; redirects only to a registered URI."""

    def get_server_jwks(self) -> dict[str, Any]:
        return key_store().public_jwks()

    def get_algorithms(self) -> list[str]:
        return SIGNING_ALGS

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        login = login_session.log_out()
        if login is not None:
            audit.record(
                "auth.logged_out", actor=f"account:{login.account_id}", details={"via": "rp"}
            )


class AccessTokenValidator(BearerTokenValidator):
    """Bearer tokens for userinfo and the management API: live, unrevoked, account usable."""

    def authenticate_token(self, token_string: str) -> PresentedToken | None:
        return find_presented(db.session(), token_string)


class FormRequest(FlaskOAuth2Request):
    """Authlib's request of a form endpoint (authorization, token, revocation, introspection),
    on the request object itself rather than Flask's proxy (its parameters are read a dozen
    times a request), with the URI of its origin only (``origin``)."""

    def __init__(self, flask_request: Request) -> None:
        OAuth2Request.__init__(self, flask_request.method, origin(flask_request))
        # not handed over: Authlib's `headers or {}` counts them
        self.headers = flask_request.headers
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)


class BearerRequest(JsonRequest):
    """Authlib's request of a resource (userinfo, the management API), made as ``FormRequest``
    is: Authlib's own builds the full URL, which nothing reads, and counts the headers. A
    bearer token is accepted over HTTPS or on this machine only, as a form request's
    credentials are (RFC 6750 §5.3): Authlib's own resource request does not check."""

    def __init__(self, flask_request: Request) -> None:
        JsonRequest.__init__(self, flask_request.method, origin(flask_request))
        InsecureTransportError.check(self.uri)
        self.headers = flask_request.headers
        self.payload = FlaskJsonPayload(flask_request)


def origin(flask_request: Request) -> str:
    """The request's scheme and host as a URI: all that Authlib reads of a request's URI, to
    refuse a transport that is neither HTTPS nor this machine (``InsecureTransportError``).
    The full URL (Werkzeug's IRI decoding of path and query) cost ~4 % of a client
    credentials request (docs/performance.md, "Statements sent directly")."""
    return f"{flask_request.scheme}://{flask_request.host}/"


class Server(AuthorizationServer):
    """Authlib's authorization server for Flask, its form requests made as ``FormRequest`` (as
    Authlib's own, of the current request whatever it is handed)."""

    def create_oauth2_request(self, _request: Any) -> FormRequest:
        return FormRequest(context.request())


def build_server(app: Flask, settings: Settings) -> AuthorizationServer:
    server = Server()
    server.init_app(app, query_client=query_client, save_token=save_token)
    for method in (PrivateKeyJwt(), ClientSecretJwt()):
        server.register_client_auth_method(method.CLIENT_AUTH_METHOD, method)
    server.scopes_supported = SCOPES_SUPPORTED
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=generate_token_value,
            refresh_token_generator=generate_token_value,
            expires_generator=access_token_lifetime,
        ),
    )
    server.register_grant(
        grants.AuthorizationCodeGrant,
        [grants.StrictCodeChallenge(required=True), grants.IdTokenExtension()],
    )
    server.register_grant(grants.RefreshTokenGrant)
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(EndSession)
    server.register_endpoint(ClientRegistration)
    server.register_endpoint(ClientConfiguration)
    return server


class Protector(ResourceProtector):
    """Authlib's resource protector for Flask, its requests made as ``BearerRequest``."""

    def acquire_token(self, scopes: list[str] | str | None = None, **kwargs: Any) -> Any:
        kwargs["scopes"] = scopes
        for claim, value in kwargs.items():  # as Authlib's: one value stands for a list
            if isinstance(value, str):
                kwargs[claim] = [value]
        token = self.validate_request(request=BearerRequest(context.request()), **kwargs)
        token_authenticated.send(self, token=token)
        context.g().authlib_server_oauth2_token = token  # where Authlib's current_token finds it
        return token


def build_protector() -> ResourceProtector:
    protector = Protector()
    protector.register_token_validator(AccessTokenValidator())
    return protector


def authorization_server() -> AuthorizationServer:
    value: AuthorizationServer = context.app().extensions["idp.oauth"]
    return value


def resource_protector() -> ResourceProtector:
    value: ResourceProtector = context.app().extensions["idp.protector"]
    return value
