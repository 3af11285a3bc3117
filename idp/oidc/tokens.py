"""Opaque access and refresh tokens: generated, stored as SHA-256 digests, revocable.

Opaque rather than RFC 9068 JWTs because a deleted operator's access must end at once
(docs/design.md journey 3) and every use can be checked against the database.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp import db
from idp.config import settings
from idp.db import utcnow
from idp.oidc.models import Token, digest


def generate_token_value(*_args: Any, **_kwargs: Any) -> str:
    """256 bits of randomness, URL-safe."""
    return secrets.token_urlsafe(32)


def access_token_lifetime(_client: ClientMixin, _grant_type: str) -> int:
    return settings().access_token_ttl


def save_token(token: dict[str, Any], request: Any) -> None:
    """Store a freshly issued token (Authlib's ``save_token`` hook) by digest only."""
    now = utcnow()
    user = request.user
    previous: Token | None = getattr(request, "refresh_token", None)
    code = getattr(request, "authorization_code", None)
    refresh = token.get("refresh_token")
    row = Token(
        client_id=request.client.client_id,
        account_id=user.account_id if user else None,
        identity=user.identity if user else None,
        access_token_hash=digest(token["access_token"]),
        refresh_token_hash=digest(refresh) if refresh else None,
        scope=token.get("scope", ""),
        family_id=previous.family_id if previous else secrets.token_hex(16),
        code_id=code.id if code is not None else (previous.code_id if previous else None),
        sid=user.sid if user else None,
        auth_time=db.datetime_from_timestamp(user.auth_time) if user and user.auth_time else None,
        amr=list(user.amr) if user else [],
        issued_at=now,
        access_expires_at=now + timedelta(seconds=token["expires_in"]),
        refresh_expires_at=now + timedelta(seconds=settings().refresh_token_idle_ttl)
        if refresh
        else None,
        family_expires_at=_family_expiry(previous, now) if refresh else None,
    )
    db.session().add(row)


def _family_expiry(previous: Token | None, now: datetime) -> datetime:
    """The absolute lifetime counts from the first token of the family, not from rotation."""
    if previous is not None and previous.family_expires_at is not None:
        return previous.family_expires_at
    return now + timedelta(seconds=settings().refresh_token_absolute_ttl)


def find_access_token(session: Session, value: str) -> Token | None:
    return session.scalar(select(Token).where(Token.access_token_hash == digest(value)))


def find_refresh_token(session: Session, value: str) -> Token | None:
    return session.scalar(select(Token).where(Token.refresh_token_hash == digest(value)))


def revoke_family(session: Session, family_id: str) -> int:
    return db.rowcount(
        session.execute(
            update(Token)
            .where(Token.family_id == family_id, Token.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    )


def revoke_issued_from_code(session: Session, code_id: int) -> int:
    """RFC 6749 §4.1.2: a replayed code revokes every token issued from it, refreshes included."""
    families = session.scalars(
        select(Token.family_id).where(Token.code_id == code_id).distinct()
    ).all()
    return sum(revoke_family(session, family) for family in families)


def revoke_for_account(session: Session, account_id: int, *, org_id: int | None = None) -> int:
    """End every token of an account (optionally only those acting for ``org_id``)."""
    rows = session.scalars(
        select(Token).where(Token.account_id == account_id, Token.revoked_at.is_(None))
    )
    count = 0
    for row in rows:
        if org_id is None or (row.identity is not None and row.identity.org_id == org_id):
            row.revoked_at = utcnow()
            count += 1
    return count


def token_is_active(token: Token) -> bool:
    return not token.is_revoked() and not token.is_expired()

