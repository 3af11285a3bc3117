"""A token presented by its value: an access token at userinfo or the management API, either
token at introspection or revocation.

It is read in one statement with its client and, for an operator's token, the operator's
standing in the token's organisation (``eligibility.OPERATOR_STANDING``), as plain columns:
these requests are the busiest after the token endpoint, and reading the token, its client and
the standing as ORM objects in two or three statements cost more than the rest of the request
(docs/performance.md). What is read is a snapshot: nothing here writes the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from sqlalchemy import JSON, and_, bindparam, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session

from idp import db
from idp.db import utcnow
from idp.identity.eligibility import OPERATOR_STANDING, OperatorStanding, standing_in
from idp.identity.models import Account, Identity, Membership, Organisation
from idp.oidc.models import Client, Token, digest, refresh_is_usable

Kind = Literal["access_token", "refresh_token"]


@dataclass(frozen=True)
class PresentedToken(TokenMixin):
    """What a stored token says, as presented by one of its two values (``presented_as``)."""

    presented_as: Kind
    client_id: str
    account_id: int | None
    identity: Identity | None
    scope: str
    family_id: str
    sid: str | None
    auth_time: datetime | None
    amr: list[str]
    acr: str | None
    claims: dict[str, Any] | None
    credential_version: int
    issued_at: datetime
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    family_expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    client: Client | None  # not in the session (read along); None once the client is deleted
    standing: OperatorStanding | None  # of an operator's token; None for any other

    @property
    def enabled_client(self) -> Client | None:
        return None if self.client is None or self.client.disabled else self.client

    def check_client(self, client: ClientMixin) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        """A refresh token lasts as long as it can be used, whatever its access token's expiry
        (RFC 7662 §2.2)."""
        if self.presented_as == "refresh_token":
            return not self.refresh_is_usable()
        return utcnow() >= self.access_expires_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def refresh_is_usable(self) -> bool:
        return refresh_is_usable(self)


_TOKEN_COLUMNS = (
    Token.client_id,
    Token.account_id,
    Token.identity,
    Token.scope,
    Token.family_id,
    Token.sid,
    Token.auth_time,
    Token.amr,
    Token.acr,
    Token.claims,
    Token.credential_version,
    Token.issued_at,
    Token.access_expires_at,
    Token.refresh_expires_at,
    Token.family_expires_at,
    Token.revoked_at,
    Token.rotated_at,
)
_TOKEN_ORG = type_coerce(Token.identity, JSON)["org_id"].as_integer()


def _presented_by(value_hash: InstrumentedAttribute[Any]) -> Any:
    """The token whose ``value_hash`` is the presented value's digest, its client's metadata,
    and the standing of its operator (if any) in the organisation of its identity."""
    return (
        select(*_TOKEN_COLUMNS, Client.client_metadata, *OPERATOR_STANDING)
        .outerjoin(Client, Client.client_id == Token.client_id)
        .outerjoin(
            Membership,
            and_(Membership.account_id == Token.account_id, Membership.org_id == _TOKEN_ORG),
        )
        .outerjoin(Organisation, Organisation.id == Membership.org_id)
        .outerjoin(Account, Account.id == Membership.account_id)
        .where(value_hash == bindparam("digest"))
    )


_CLIENT_AT = len(_TOKEN_COLUMNS)  # the row: the token's columns, the client's, the standing's
# Built once: building a statement and its cache key costs more than running it.
_PRESENTED_BY = {
    "access_token": _presented_by(Token.access_token_hash),
    "refresh_token": _presented_by(Token.refresh_token_hash),
}


def find_presented(
    session: Session, value: str, kind: Kind = "access_token"
) -> PresentedToken | None:
    """The token whose ``kind`` value is ``value``, or None."""
    row = db.first(session, _PRESENTED_BY[kind], {"digest": digest(value)})
    if row is None:
        return None
    token, metadata = row[:_CLIENT_AT], row[_CLIENT_AT]
    return PresentedToken(
        kind,
        *token,
        client=_client(row.client_id, metadata) if metadata else None,
        standing=standing_in(row[_CLIENT_AT + 1 :]),
    )


def _client(client_id: str, metadata: dict[str, Any]) -> Client:
    return db.unattached(Client, {"client_id": client_id, "client_metadata": metadata})


def find_token(session: Session, value: str, hint: str | None) -> PresentedToken | None:
    """A token presented as either kind; the hint only orders the search (RFC 7009 §2.1)."""
    kinds: list[Kind] = ["access_token", "refresh_token"]
    if hint == "refresh_token":
        kinds.reverse()
    for kind in kinds:
        token = find_presented(session, value, kind)
        if token is not None:
            return token
    return None
