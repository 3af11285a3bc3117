"""Relying parties, authorization codes and tokens.

Secrets, codes and tokens are stored only as SHA-256 digests; the lookup key is the digest.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any, Protocol

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin
from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.config import settings
from idp.db import Base, UTCDateTime, created_at, intpk, utcnow
from idp.identity.models import ORG_TYPES, Identity, IdentityJSON

DEFAULT_REUSE_INTERVAL = 5
# A client's own token lifetimes (seconds) and the platform setting each may only shorten.
LIFETIMES = {
    "access_token_lifetime": "access_token_ttl",
    "id_token_lifetime": "id_token_ttl",
    "refresh_token_idle_lifetime": "refresh_token_idle_ttl",
    "refresh_token_absolute_lifetime": "refresh_token_absolute_ttl",
}


def digest(value: str) -> str:
    """SHA-256 hex digest: high-entropy generated secrets need no slow hash."""
    return hashlib.sha256(value.encode()).hexdigest()


class Client(Base, ClientMixin):
    """A relying party registered with RFC 7591 metadata."""

    __tablename__ = "client"

    id: Mapped[intpk]
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    # the secret itself, sealed (idp.sealing), only for client_secret_jwt: its MAC key
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[created_at]

    # --- metadata accessors -------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.client_metadata.get("client_name") or self.client_id)

    @property
    def redirect_uris(self) -> list[str]:
        return list(self.client_metadata.get("redirect_uris", []))

    @property
    def post_logout_redirect_uris(self) -> list[str]:
        return list(self.client_metadata.get("post_logout_redirect_uris", []))

    @property
    def grant_types(self) -> list[str]:
        return list(self.client_metadata.get("grant_types", []))

    @property
    def scope(self) -> str:
        return str(self.client_metadata.get("scope", ""))

    @property
    def auth_method(self) -> str:
        return str(self.client_metadata.get("token_endpoint_auth_method", "client_secret_basic"))

    @property
    def disabled(self) -> bool:
        return bool(self.client_metadata.get("disabled", False))

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"

    @property
    def require_pkce(self) -> bool:
        return self.is_public or bool(self.client_metadata.get("require_pkce", False))

    @property
    def id_token_alg(self) -> str:
        return str(self.client_metadata.get("id_token_signed_response_alg", "ES256"))

    @property
    def backchannel_logout_uri(self) -> str | None:
        return self.client_metadata.get("backchannel_logout_uri")

    @property
    def frontchannel_logout_uri(self) -> str | None:
        return self.client_metadata.get("frontchannel_logout_uri")

    @property
    def frontchannel_logout_session_required(self) -> bool:
        return bool(self.client_metadata.get("frontchannel_logout_session_required", False))

    @property
    def initiate_login_uri(self) -> str | None:
        return self.client_metadata.get("initiate_login_uri")

    @property
    def org_types(self) -> list[str]:
        return list(self.client_metadata.get("org_types", list(ORG_TYPES)))

    @property
    def refresh_token_reuse_interval(self) -> int:
        """Seconds within which this client may present a just-rotated refresh token again and
        get the same successor (docs/protocol.md, "Refresh-token reuse interval"): a few for confidential clients, none
        for public ones, whose tokens live in less trusted places."""
        default = 0 if self.is_public else DEFAULT_REUSE_INTERVAL
        return int(self.client_metadata.get("refresh_token_reuse_interval", default))

    def lifetime(self, field: str) -> int:
        """The client's ``field`` of ``LIFETIMES`` if registered, else the platform's."""
        platform: int = getattr(settings(), LIFETIMES[field])
        return min(int(self.client_metadata.get(field, platform)), platform)

    @property
    def may_introspect(self) -> bool:
        return bool(self.client_metadata.get("introspection_allowed", False))

    # --- authlib ClientMixin ------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OAuth 2.1: redirect_uri is always required; never guess one.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client is registered for; no scope asks for all of them
        (RFC 6749 §3.3 default)."""
        if not scope:
            return self.scope
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, RFC 9700 §4.1.3

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash:
            return False
        return hmac.compare_digest(self.secret_hash, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Strict at every endpoint (docs/protocol.md P1): only the registered method.
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class AuthorizationCode(Base, AuthorizationCodeMixin):
    """A code issued at /authorize; consumed atomically at /token (``consumed_at``).

    ``family_id`` names the token family the code issued, set by the issuing transaction only
    while ``revoked_at`` is empty; a replay sets ``revoked_at`` first, so an issuance still in
    flight is refused (docs/protocol.md P2)."""

    __tablename__ = "authorization_code"

    id: Mapped[intpk]
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    identity: Mapped[Identity | None] = mapped_column(IdentityJSON(), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(64))
    # the ``claims`` request parameter as ``requested_claims.parse`` keeps it (OIDC Core §5.5)
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sid: Mapped[str] = mapped_column(String(64), index=True)
    credential_version: Mapped[int] = mapped_column(default=0, server_default="0")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    family_id: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str]:
        return list(self.amr)


class TokenFamily(Base):
    """The tokens of one code and their refresh rotations. Revoking a family marks it here
    before its tokens are revoked, and every issuance into it first takes this row with a
    conditional UPDATE: an issuance racing the revocation is either refused or committed before
    the revocation sweeps its tokens (docs/protocol.md P2)."""

    __tablename__ = "token_family"

    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[created_at]
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Token(Base, TokenMixin):
    """An access token with its (optional) refresh token. Refresh rotation creates a new row in
    the same ``family_id``; reuse of a rotated refresh token revokes the whole family."""

    __tablename__ = "token"

    id: Mapped[intpk]
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    identity: Mapped[Identity | None] = mapped_column(IdentityJSON(), nullable=False)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorization_code.id", ondelete="SET NULL"), index=True
    )
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(64))
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # of the code, for every rotation
    credential_version: Mapped[int] = mapped_column(default=0, server_default="0")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    family_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    presented_as = "access_token"  # set by lookups: which of the two values was presented

    def check_client(self, client: ClientMixin) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return utcnow() >= self.access_expires_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def refresh_is_usable(self) -> bool:
        return refresh_is_usable(self)


class RefreshTimes(Protocol):
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def rotated_at(self) -> datetime | None: ...
    @property
    def refresh_expires_at(self) -> datetime | None: ...
    @property
    def family_expires_at(self) -> datetime | None: ...


def refresh_is_usable(token: RefreshTimes) -> bool:
    """Whether a token's refresh token may still be used: neither revoked nor rotated, within
    its idle lifetime and its family's absolute one."""
    now = utcnow()
    return (
        token.revoked_at is None
        and token.rotated_at is None
        and token.refresh_expires_at is not None
        and now < token.refresh_expires_at
        and (token.family_expires_at is None or now < token.family_expires_at)
    )


class InitialAccessToken(Base):
    """An RFC 7591 §3 initial access token: a platform admin's permission to register clients
    at ``/oauth/register``. Only the SHA-256 digest is stored; the token is shown once.
    ``max_uses`` empty means any number of registrations until it expires or is revoked."""

    __tablename__ = "initial_access_token"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def state(self) -> str:
        """``revoked``, ``expired``, ``used_up`` or ``active`` (checked in this order)."""
        if self.revoked_at is not None:
            return "revoked"
        if utcnow() >= self.expires_at:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used_up"
        return "active"


class RegistrationAccessToken(Base):
    """The RFC 7592 registration access token of a dynamically registered client (digest only),
    with the initial access token that registered it. Deleted with its client."""

    __tablename__ = "registration_access_token"

    id: Mapped[intpk]
    client_pk: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    initial_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("initial_access_token.id", ondelete="SET NULL"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def check_client(self, client: Client) -> bool:
        """Authlib's RFC 7592 check: the token was issued to this client."""
        return self.client_pk == client.id


class ConsentGrant(Base):
    """What a person consented to give a relying party: the scopes granted, remembered across
    logins (docs/protocol.md, "Consent"). The person is an operator's account or, for the
    certificate logins of an organisation's admin, the organisation: exactly one of the two.
    A later request whose scopes are all among ``scope`` needs no consent page."""

    __tablename__ = "consent_grant"
    __table_args__ = (
        UniqueConstraint("account_id", "client_id"),
        UniqueConstraint("org_id", "client_id"),
        CheckConstraint("(account_id IS NULL) <> (org_id IS NULL)", name="one_holder"),
    )

    id: Mapped[intpk]
    # each holder's column leads a unique constraint, which serves as its index
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        ForeignKey("client.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")  # space-separated, sorted
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())


CLIENTS = "idp.clients"  # Session.info key: the clients read in this session, by id
_CLIENT_BY_ID = select(Client).where(Client.client_id == bindparam("client_id"))  # built once


def client_in_session(session: Session, client_id: str) -> Client | None:
    """The client row as an object of this session, read once per session (one request): what
    the consoles, the CLI and client management change and save. A client deleted or detached
    since is read again. The protocol endpoints, which only read, take it from
    ``idp.oidc.client_cache`` instead."""
    known: dict[str, Client | None] = session.info.setdefault(CLIENTS, {})
    client = known.get(client_id)
    if client is None or not inspect(client).persistent:
        client = known[client_id] = session.scalar(_CLIENT_BY_ID, {"client_id": client_id})
    return client
