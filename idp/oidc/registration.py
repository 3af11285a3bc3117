"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592), behind initial
access tokens that platform admins issue (docs/protocol.md, "Dynamic client registration").

The endpoints are Authlib's (``ClientRegistrationEndpoint``, ``ClientConfigurationEndpoint``);
the metadata policy is the one of ``idp clients add`` and the console: the same service
functions (``clients.register_client``, ``clients.update_client``) validate and store, so a
registered client can ask for nothing a platform admin's form could not give it (P12). Tokens
are 256-bit random values stored as SHA-256 digests, like client secrets.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, NoReturn

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591 import InvalidClientMetadataError as MetadataRefused
from authlib.oauth2.rfc7591.errors import InvalidRedirectURIError as RedirectUriRefused
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint
from flask import request as flask_request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from idp import audit, db
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError, NotFoundError
from idp.oidc import clients
from idp.oidc.models import Client, InitialAccessToken, RegistrationAccessToken, digest
from idp.store import store

# Provider metadata a registering client does not choose (docs/protocol.md): its id is made
# here, only a platform admin disables a client or lets it introspect others' tokens, and a
# client that registered itself is a third party, so people are always asked for consent.
PROVIDER_DECIDES = frozenset({"client_id", "disabled", "introspection_allowed", "require_consent"})
# Larger than any sensible metadata (a JWK Set of several RSA keys is a few KiB).
MAX_BODY_BYTES = 16 * 1024
MAX_DAYS = 365
MAX_USES = 10000
LABEL_MAX = 100

INITIAL_TOKEN_ISSUED = "oidc.initial_token_issued"
INITIAL_TOKEN_REVOKED = "oidc.initial_token_revoked"
REGISTRATION_REFUSED = "oidc.registration_refused"


class InitialTokenRequestError(IdpError):
    code = "invalid_initial_token_request"
    message = _l("初始访问令牌的参数无效。")


class RegistrationRateLimitedError(IdpError):
    code = "too_many_requests"
    status = 429
    message = _l("注册请求过于频繁，请稍后再试。")


# --- initial access tokens ----------------------------------------------------------------------


def issue_initial_token(
    session: Session, *, label: str, days: int, max_uses: int | None, actor: str
) -> tuple[InitialAccessToken, str]:
    """A new initial access token valid ``days`` days for ``max_uses`` registrations (None: any
    number); returns it with its value, shown only now."""
    label = label.strip()
    if not label or len(label) > LABEL_MAX or not label.isprintable():
        raise InitialTokenRequestError(
            _("名称须为 1 到 %(n)d 个字符。", n=LABEL_MAX), field="label"
        )
    if not 1 <= days <= MAX_DAYS:
        raise InitialTokenRequestError(_("有效期须为 1 到 %(n)d 天。", n=MAX_DAYS), field="days")
    if max_uses is not None and not 1 <= max_uses <= MAX_USES:
        raise InitialTokenRequestError(
            _("可用次数须为 1 到 %(n)d 次，或留空表示不限。", n=MAX_USES), field="max_uses"
        )
    value = secrets.token_urlsafe(32)
    token = InitialAccessToken(
        token_hash=digest(value),
        label=label,
        created_by=actor,
        expires_at=utcnow() + timedelta(days=days),
        max_uses=max_uses,
        uses=0,
    )
    session.add(token)
    session.flush()
    audit.record(
        INITIAL_TOKEN_ISSUED,
        actor=actor,
        target=f"initial_token:{token.id} {label}",
        details={"days": str(days), "max_uses": str(max_uses or "")},
    )
    return token, value


def list_initial_tokens(session: Session) -> list[InitialAccessToken]:
    """Every initial access token, newest first."""
    return list(session.scalars(select(InitialAccessToken).order_by(InitialAccessToken.id.desc())))


def get_initial_token(session: Session, token_id: int) -> InitialAccessToken:
    token = session.get(InitialAccessToken, token_id)
    if token is None:
        raise NotFoundError(f"no initial access token {token_id}")
    return token


def revoke_initial_token(session: Session, token_id: int, *, actor: str) -> InitialAccessToken:
    """No registration with it from now on; the clients it registered stay."""
    token = get_initial_token(session, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            INITIAL_TOKEN_REVOKED, actor=actor, target=f"initial_token:{token.id} {token.label}"
        )
    return token


def initial_token_info(token: InitialAccessToken) -> dict[str, Any]:
    """What the command line prints about a token (never its value or digest)."""
    return {
        "id": token.id,
        "label": token.label,
        "state": token.state,
        "created_by": token.created_by,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
        "max_uses": token.max_uses,
        "uses": token.uses,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def _spend(session: Session, token: InitialAccessToken) -> bool:
    """Take one use, atomically: parallel registrations cannot exceed ``max_uses``."""
    now = utcnow()
    table = InitialAccessToken
    result = session.execute(
        update(table)
        .where(
            table.id == token.id,
            table.revoked_at.is_(None),
            table.expires_at > now,
            (table.max_uses.is_(None)) | (table.uses < table.max_uses),
        )
        .values(uses=table.uses + 1, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# --- the requests -----------------------------------------------------------------------------


def count_request(network: str) -> None:
    """Requests to the registration endpoints per client network and hour."""
    window = timedelta(hours=1)
    if store().incr(f"registration:ip:{network}", window) > settings().registration_ip_limit:
        raise RegistrationRateLimitedError()


def limit_body() -> None:
    """Refuse larger bodies than metadata needs, before anything reads them (413)."""
    flask_request.max_content_length = MAX_BODY_BYTES


class MissingTokenError(InvalidTokenError):
    """No bearer token (none at all, or another authentication scheme): RFC 6750 §3.1 asks for
    a bare challenge, without error codes."""

    description = "a bearer token is required"

    def get_headers(self) -> list[tuple[str, str]]:
        return [*default_json_headers, ("WWW-Authenticate", "Bearer")]


def bearer_token() -> str:
    """The token of ``Authorization: Bearer`` (RFC 6750 §2.1, the scheme in any case)."""
    scheme, _sep, value = flask_request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise MissingTokenError()
    value = value.strip()
    if not value or len(value) > 512:
        raise InvalidTokenError(description="the Authorization header is not a bearer token")
    return value


def registration_metadata(raw: Any) -> dict[str, Any]:
    """The request's metadata without what the provider decides, and consent always asked."""
    if not isinstance(raw, dict):
        raise MetadataRefused(description="the body must be a JSON object of client metadata")
    kept = {k: v for k, v in raw.items() if k not in PROVIDER_DECIDES}
    return {**kept, "require_consent": True}


def json_body() -> Any:
    try:
        return flask_request.get_json(force=True, silent=False)
    except HTTPException as error:
        if error.code == 413:
            raise
        raise MetadataRefused(description="the body must be JSON") from None


def refusal_of(error: clients.InvalidClientMetadataError) -> MetadataRefused | RedirectUriRefused:
    """The shared validation's refusal as RFC 7591 §3.2.2 states it."""
    description = str(error.message)
    if isinstance(error, clients.InvalidRedirectUriError):
        return RedirectUriRefused(description=description)
    return MetadataRefused(description=description)


def _refuse_metadata(error: clients.InvalidClientMetadataError, actor: str) -> NoReturn:
    refusal = refusal_of(error)
    audit.record(REGISTRATION_REFUSED, actor=actor, result=str(refusal.error))
    raise refusal from None


def registration_client_uri(client_id: str) -> str:
    return settings().issuer + url_for("oidc.client_configuration", client_id=client_id)


def issue_registration_token(session: Session, client: Client, *, initial: int | None) -> str:
    value = secrets.token_urlsafe(32)
    session.add(
        RegistrationAccessToken(
            client_pk=client.id, token_hash=digest(value), initial_token_id=initial
        )
    )
    return value


def find_registration_token(
    session: Session, value: str, client_id: str
) -> RegistrationAccessToken | None:
    """The token only for its own client: another client's token finds nothing, so the answer
    does not tell whether ``client_id`` exists."""
    return session.scalar(
        select(RegistrationAccessToken)
        .join(Client, Client.id == RegistrationAccessToken.client_pk)
        .where(RegistrationAccessToken.token_hash == digest(value), Client.client_id == client_id)
    )


class ClientRegistration(ClientRegistrationEndpoint):
    """``POST /oauth/register`` (RFC 7591 §3): a bearer initial access token, then the metadata
    through ``clients.register_client``; the answer carries the secret (confidential clients
    only) and the RFC 7592 registration access token, both shown only now."""

    def create_endpoint_request(self, request: Any) -> Any:
        return self.server.create_json_request(request)

    def create_registration_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        token = self.authenticate_token(request)
        request.credential = token
        metadata = self.extract_client_metadata(request)
        client = self.save_client({}, metadata, request)
        return 201, self.generate_client_registration_info(client, request), default_json_headers

    def authenticate_token(self, request: Any) -> InitialAccessToken:
        value = bearer_token()
        token = db.session().scalar(
            select(InitialAccessToken).where(InitialAccessToken.token_hash == digest(value))
        )
        if token is None or token.state != "active":
            audit.record(
                REGISTRATION_REFUSED,
                actor=f"initial_token:{token.id}" if token else "anonymous",
                result="invalid_token",
                details={"state": token.state if token else "unknown"},
            )
            raise InvalidTokenError(
                description="the initial access token is unknown, expired, revoked or used up"
            )
        return token

    def extract_client_metadata(self, request: Any) -> dict[str, Any]:
        return registration_metadata(json_body())

    def save_client(
        self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any
    ) -> Client:
        session = db.session()
        token: InitialAccessToken = request.credential
        actor = f"initial_token:{token.id}"
        if not _spend(session, token):  # used up or revoked by a request in parallel
            audit.record(REGISTRATION_REFUSED, actor=actor, result="invalid_token")
            raise InvalidTokenError(description="the initial access token is used up")
        try:
            client, secret = clients.register_client(session, client_metadata, actor=actor)
        except clients.InvalidClientMetadataError as error:
            _refuse_metadata(error, actor)
        request.client_secret = secret
        request.registration_token = issue_registration_token(session, client, initial=token.id)
        return client

    def generate_client_registration_info(self, client: Client, request: Any) -> dict[str, Any]:
        return {
            **clients.client_info(client, request.client_secret),
            "registration_access_token": request.registration_token,
            "registration_client_uri": registration_client_uri(client.client_id),
        }

    def get_server_metadata(self) -> dict[str, Any]:
        return {}


class ClientConfiguration(ClientConfigurationEndpoint):
    """``/oauth/register/<client_id>`` (RFC 7592): GET reads, PUT replaces the metadata (the
    same validation as registering) and rotates the registration access token, DELETE removes
    the client with its tokens. The registration access token answers for its own client only;
    a client disabled by a platform admin may not manage itself (403)."""

    def create_endpoint_request(self, request: Any) -> Any:
        return self.server.create_json_request(request)

    def create_configuration_response(self, request: Any) -> Any:
        answer = super().create_configuration_response(request)
        if answer is None and request.method == "HEAD":
            # Flask routes HEAD to the GET view, Authlib answers nothing for it (P13): the
            # headers of a read, checked like one (Werkzeug drops the body).
            return self.create_read_client_response(request.client, request)
        return answer

    def authenticate_token(self, request: Any) -> RegistrationAccessToken:
        value = bearer_token()
        client_id = str((flask_request.view_args or {}).get("client_id", ""))
        token = find_registration_token(db.session(), value, client_id)
        if token is None:
            raise InvalidTokenError(description="the registration access token is not valid here")
        return token

    def authenticate_client(self, request: Any) -> Client:
        # The token was found through this client (authenticate_token), so the client exists
        # and Authlib's "unknown client" branch, with its swapped arguments (P13), never runs.
        token: RegistrationAccessToken = request.credential
        client = db.session().get(Client, token.client_pk)
        assert client is not None  # noqa: S101 - the foreign key holds it
        return client

    def revoke_access_token(self, token: Any, request: Any) -> None:
        """Not reached (see ``authenticate_client``)."""

    def check_permission(self, client: Client, request: Any) -> bool:
        return not client.disabled

    def create_update_client_response(self, client: Client, request: Any) -> Any:
        if not isinstance(json_body(), dict):
            raise MetadataRefused(description="the body must be a JSON object of client metadata")
        if request.payload.data.get("client_id") != client.client_id:
            raise InvalidRequestError(description="client_id must be the client's own")
        return super().create_update_client_response(client, request)

    def extract_client_metadata(self, request: Any) -> dict[str, Any]:
        return registration_metadata(json_body())

    def update_client(
        self, client: Client, client_metadata: dict[str, Any], request: Any
    ) -> Client:
        session = db.session()
        actor = f"client:{client.client_id}"
        try:
            clients.update_client(
                session, client.client_id, client_metadata, actor=actor, replace=True
            )
        except clients.InvalidClientMetadataError as error:
            _refuse_metadata(error, actor)
        row = session.scalars(
            select(RegistrationAccessToken).where(RegistrationAccessToken.client_pk == client.id)
        ).one()
        request.registration_token = secrets.token_urlsafe(32)
        row.token_hash = digest(request.registration_token)
        row.issued_at = utcnow()
        return client

    def delete_client(self, client: Client, request: Any) -> None:
        clients.remove_client(db.session(), client.client_id, actor=f"client:{client.client_id}")

    def introspect_client(self, client: Client) -> dict[str, Any]:
        return clients.client_info(client)  # never the secret (P13): only its digest is kept

    def generate_client_registration_info(self, client: Client, request: Any) -> dict[str, Any]:
        presented = getattr(request, "registration_token", None) or bearer_token()
        return {
            "registration_access_token": presented,
            "registration_client_uri": registration_client_uri(client.client_id),
        }

    def get_server_metadata(self) -> dict[str, Any]:
        return {}
