"""Opaque access and refresh tokens: generated, stored as SHA-256 digests, revocable.

Opaque rather than RFC 9068 JWTs because a deleted operator's access must end at once
(docs/design.md journey 3) and every use can be checked against the database.

Issuance and revocation meet on one row (docs/protocol.md P2): a token is issued only after a
conditional UPDATE of its anchor (the code for a new family, the family for a rotation) finds
the anchor unrevoked, and revocation marks the anchor before it revokes tokens. Whichever
writes the anchor first, a detected replay or a revocation leaves no live token behind.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError
from sqlalchemy import CTE, Insert, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp import audit, db, metrics
from idp.db import table_of, utcnow
from idp.identity.models import Identity
from idp.oidc import backchannel
from idp.oidc.models import (
    AuthorizationCode,
    Client,
    Token,
    TokenFamily,
    digest,
)

OFFLINE_ACCESS = "offline_access"
# An expired code may still be in a redemption that checked it a moment ago: revoked too.
CODE_IN_FLIGHT = timedelta(minutes=5)


def generate_token_value(*_args: Any, **_kwargs: Any) -> str:
    """256 bits of randomness, URL-safe."""
    return secrets.token_urlsafe(32)


def access_token_lifetime(client: Client, _grant_type: str) -> int:
    return client.lifetime("access_token_lifetime")


class RevokedAnchorError(InvalidGrantError):
    """The code or token family was revoked (a replay, or a revocation) while this token was
    being issued: nothing is stored and the client gets ``invalid_grant``."""


def save_token(token: dict[str, Any], request: Any) -> None:
    """Store a freshly issued token (Authlib's ``save_token`` hook) by digest only, once its
    anchor is taken (``issue``)."""
    now = utcnow()
    user = request.user
    previous: Token | None = getattr(request, "refresh_token", None)
    code: AuthorizationCode | None = getattr(request, "authorization_code", None)
    refresh = token.get("refresh_token")
    row = dict(
        client_id=request.client.client_id,
        account_id=user.account_id if user else None,
        identity=user.identity if user else None,
        access_token_hash=digest(token["access_token"]),
        refresh_token_hash=digest(refresh) if refresh else None,
        scope=token.get("scope", ""),
        family_id=previous.family_id if previous is not None else secrets.token_hex(16),
        code_id=code.id if code is not None else (previous.code_id if previous else None),
        sid=user.sid if user else None,
        auth_time=db.datetime_from_timestamp(user.auth_time) if user and user.auth_time else None,
        amr=list(user.amr) if user else [],
        acr=user.acr if user else None,
        claims=code.claims if code is not None else (previous.claims if previous else None),
        credential_version=user.credential_version if user else 0,
        issued_at=now,
        access_expires_at=now + timedelta(seconds=token["expires_in"]),
        refresh_expires_at=now
        + timedelta(seconds=request.client.lifetime("refresh_token_idle_lifetime"))
        if refresh
        else None,
        family_expires_at=_family_expiry(request.client, previous, now) if refresh else None,
    )
    issue(db.session(), row, code=code, previous=previous)
    metrics.count_token(request.payload.grant_type)


def issue(
    session: Session,
    row: dict[str, Any],
    *,
    code: AuthorizationCode | None,
    previous: Token | None,
) -> None:
    """Insert the token ``row`` once its anchor is taken in the same transaction: the family
    for a rotation (whose presented token is retired with it), the code for a code's first
    tokens, nothing for a client's own (nothing is ever issued into its family, so revoking it
    revokes its one token all the same). Where statements stand alone (PostgreSQL) the anchor,
    the family and the token are one statement."""
    if code is None and previous is None:
        db.write(session, _INSERT_TOKEN, row)
    elif db.stands_alone(session):
        params = {_NEW + name: row[name] for name in _TOKEN_COLUMNS}
        params.update(family=row["family_id"], now=row["issued_at"])
        if previous is not None:
            params["previous"] = previous.id
        else:
            params["code"] = row["code_id"]
        anchored = _ISSUE_ROTATION if previous is not None else _ISSUE_FROM_CODE
        if db.write(session, anchored, params) != 1:
            refuse_issuance(target=_anchor_name(row, previous))
        if previous is not None:
            set_committed_value(previous, "revoked_at", row["issued_at"])
    else:
        if previous is not None:
            take_family(session, previous.family_id)
        else:
            take_code(session, row["code_id"], row["family_id"])
            family = {"family_id": row["family_id"], "client_id": row["client_id"]}
            db.write(session, _INSERT_FAMILY, family)
        db.write(session, _INSERT_TOKEN, row)


def _anchor_name(row: dict[str, Any], previous: Token | None) -> str:
    return f"family:{row['family_id'][:8]}" if previous is not None else f"code:{row['code_id']}"


# Built once, as every token request runs some of them. Plain table statements: the rows are
# written, never read back in the request, so the ORM's unit of work (identity map, flush
# ordering) and its synchronisation of loaded objects would be work for nothing.
_families = table_of(TokenFamily)
_codes = table_of(AuthorizationCode)
_tokens = table_of(Token)
_INSERT_TOKEN = insert(_tokens)
_INSERT_FAMILY = insert(_families)
_TAKE_FAMILY = (
    update(_families)
    .where(_families.c.family_id == bindparam("family"), _families.c.revoked_at.is_(None))
    .values(rotated_at=bindparam("now"))
)
_TAKE_CODE = (
    update(_codes)
    .where(
        _codes.c.id == bindparam("code"),
        _codes.c.revoked_at.is_(None),
        _codes.c.family_id.is_(None),
    )
    .values(family_id=bindparam("family"))
)


# Where statements stand alone (PostgreSQL), each issuance is one statement: the anchor taken
# (a data-modifying CTE), what goes with it, and the token inserted only if the anchor came
# back. The token's values are parameters named ``new_<column>``: a parameter named like a
# column of a table that the statement updates would become part of that UPDATE's SET clause.
_SET_LATER = frozenset({"id", "revoked_at", "rotated_at"})
_TOKEN_COLUMNS = [column.name for column in _tokens.c if column.name not in _SET_LATER]
_NEW = "new_"


def _token_from(anchor: CTE, also: CTE) -> Insert:
    values = [bindparam(_NEW + name, type_=_tokens.c[name].type) for name in _TOKEN_COLUMNS]
    given = select(*values).select_from(anchor)
    statement = insert(_tokens).from_select(_TOKEN_COLUMNS, given).add_cte(anchor, also)
    return statement.execution_options(preserve_rowcount=True)  # an INSERT's is not kept


_code_taken = _TAKE_CODE.returning(_codes.c.id).cte("code_taken")
_ISSUE_FROM_CODE = _token_from(
    _code_taken,
    insert(_families)
    .from_select(
        ["family_id", "client_id", "created_at"],
        select(
            bindparam("family", type_=_families.c.family_id.type),
            bindparam(_NEW + "client_id", type_=_families.c.client_id.type),
            bindparam("now", type_=_families.c.created_at.type),
        ).select_from(_code_taken),
    )
    .cte("family_made"),
)
_family_taken = _TAKE_FAMILY.returning(_families.c.family_id).cte("family_taken")
_ISSUE_ROTATION = _token_from(
    _family_taken,
    update(_tokens)  # the presented token retires with the rotation
    .where(
        _tokens.c.id == bindparam("previous"),
        _tokens.c.revoked_at.is_(None),
        _tokens.c.family_id.in_(select(_family_taken.c.family_id)),
    )
    .values(revoked_at=bindparam("now"))
    .cte("previous_retired"),
)


def take_family(session: Session, family_id: str) -> None:
    """Rotate within the family unless it is revoked. The UPDATE holds the family's row until
    this transaction ends, so a revocation marking it waits and then sees the new token."""
    if db.write(session, _TAKE_FAMILY, {"family": family_id, "now": utcnow()}) != 1:
        refuse_issuance(target=f"family:{family_id[:8]}")


def take_code(session: Session, code_id: int, family_id: str) -> None:
    """Record ``family_id`` as what the code issued, unless the code was revoked (replayed):
    a code issues at most one family, and none once a replay has been seen."""
    if db.write(session, _TAKE_CODE, {"code": code_id, "family": family_id}) != 1:
        refuse_issuance(target=f"code:{code_id}")


def refuse_issuance(*, target: str) -> None:
    audit.record("oidc.issuance_refused", actor="system", target=target, result="revoked")
    raise RevokedAnchorError("The grant has been revoked.")


def _family_expiry(client: Client, previous: Token | None, now: datetime) -> datetime:
    """The absolute lifetime counts from the first token of the family, not from rotation."""
    if previous is not None and previous.family_expires_at is not None:
        return previous.family_expires_at
    return now + timedelta(seconds=client.lifetime("refresh_token_absolute_lifetime"))


# Built once: every refresh runs it, and building the statement and its cache key cost more CPU
# than the indexed lookup itself.
_BY_REFRESH_HASH = select(Token).where(Token.refresh_token_hash == bindparam("digest"))


def find_refresh_token(session: Session, value: str) -> Token | None:
    return session.scalar(_BY_REFRESH_HASH, {"digest": digest(value)})


def revoke_family(session: Session, family_id: str) -> int:
    """Mark the family revoked, then revoke its tokens; returns how many were live.

    Two statements in this order: a rotation in flight either finds the mark and is refused,
    or holds the family's row, so the mark waits for its commit and the second statement (a
    fresh snapshot) revokes its token too."""
    now = utcnow()
    session.execute(
        update(TokenFamily)
        .where(TokenFamily.family_id == family_id)
        .values(revoked_at=func.coalesce(TokenFamily.revoked_at, now))
    )
    return db.rowcount(
        session.execute(
            update(Token)
            .where(Token.family_id == family_id, Token.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    )


def revoke_code(session: Session, code_id: int) -> str | None:
    """Mark the code revoked, so no token is issued from it any more; the family it already
    issued, if any (an issuance in flight holds the code's row, so this waits for it)."""
    family_id: str | None = session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code_id)
        .values(revoked_at=func.coalesce(AuthorizationCode.revoked_at, utcnow()))
        .returning(AuthorizationCode.family_id)
    ).scalar_one_or_none()
    return family_id


def revoke_for_account(session: Session, account_id: int, *, org_id: int | None = None) -> int:
    """End every code and token family of an account (optionally only those acting for
    ``org_id``) and tell the relying parties (back-channel logout); returns how many tokens
    were live. Codes not yet redeemed, or being redeemed, are marked first, so a redemption in
    flight is refused (see ``take_code``)."""
    backchannel.announce(
        session, backchannel.notices_for_account(session, account_id, org_id=org_id)
    )
    families = {
        family_id
        for code_id in _unissued_codes(session, account_id, org_id)
        if (family_id := revoke_code(session, code_id)) is not None
    }
    rows = session.scalars(
        select(Token).where(Token.account_id == account_id, Token.revoked_at.is_(None))
    )
    families |= {row.family_id for row in rows if _acts_for(row.identity, org_id)}
    return sum(revoke_family(session, family_id) for family_id in sorted(families))


def revoke_for_org(session: Session, org_id: int) -> tuple[int, int]:
    """End every code and token family acting for the organisation, its admin's and its
    operators' alike (a suspension), and tell the relying parties (back-channel logout);
    returns how many tokens were live and how many notices were queued. Codes first, as in
    ``revoke_for_account``."""
    queued = backchannel.announce(session, backchannel.notices_for_org(session, org_id))
    now = utcnow()
    codes = session.scalars(
        select(AuthorizationCode).where(
            backchannel.held_for_org(AuthorizationCode.account_id, org_id),
            AuthorizationCode.family_id.is_(None),
            AuthorizationCode.revoked_at.is_(None),
            AuthorizationCode.expires_at > now - CODE_IN_FLIGHT,
        )
    )
    families = {
        family_id
        for code_id in [code.id for code in codes if _acts_for(code.identity, org_id)]
        if (family_id := revoke_code(session, code_id)) is not None
    }
    rows = session.scalars(
        select(Token).where(
            backchannel.held_for_org(Token.account_id, org_id),
            Token.revoked_at.is_(None),
            or_(Token.access_expires_at > now, Token.refresh_expires_at > now),
        )
    )
    families |= {row.family_id for row in rows if _acts_for(row.identity, org_id)}
    return sum(revoke_family(session, family_id) for family_id in sorted(families)), queued


def revoke_for_client(
    session: Session, client_id: str, *, account_id: int | None, org_id: int | None
) -> int:
    """End what ``client_id`` holds for one person, an operator's account or (``account_id``
    None) an organisation's admin: codes not yet redeemed and token families, offline ones
    included. Returns how many tokens were live."""
    codes = session.scalars(
        select(AuthorizationCode).where(
            backchannel.held_by(AuthorizationCode.account_id, account_id),
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.family_id.is_(None),
            AuthorizationCode.revoked_at.is_(None),
        )
    )
    families = {
        family_id
        for code in codes
        if (account_id is not None or _acts_for(code.identity, org_id))
        and (family_id := revoke_code(session, code.id)) is not None
    }
    rows = session.scalars(
        select(Token).where(
            backchannel.held_by(Token.account_id, account_id),
            Token.client_id == client_id,
            Token.revoked_at.is_(None),
        )
    )
    families |= {
        row.family_id for row in rows if account_id is not None or _acts_for(row.identity, org_id)
    }
    return sum(revoke_family(session, family_id) for family_id in sorted(families))


def _unissued_codes(session: Session, account_id: int, org_id: int | None) -> list[int]:
    codes = session.scalars(
        select(AuthorizationCode).where(
            AuthorizationCode.account_id == account_id,
            AuthorizationCode.family_id.is_(None),
            AuthorizationCode.revoked_at.is_(None),
        )
    )
    return [code.id for code in codes if _acts_for(code.identity, org_id)]


def _acts_for(identity: Identity | None, org_id: int | None) -> bool:
    return org_id is None or (identity is not None and identity.org_id == org_id)


def revoke_on_credentials_change(account: Any, *, session: Session) -> int:
    """Receiver of ``idp.auth.credentials.changed``: a new password or phone ends every token
    of the account, for every organisation (the session that made the change gets new ones
    through /authorize without a new login)."""
    return revoke_for_account(session, account.id)


def revoke_for_login_session(session: Session, sid: str) -> int:
    """End what a login session was issued: its codes not yet redeemed and its token families,
    except those granted ``offline_access``, which outlive the login by the person's consent
    (OIDC Core §11). Returns how many tokens were live."""
    families = {
        family_id
        for code_id in session.scalars(
            select(AuthorizationCode.id).where(
                AuthorizationCode.sid == sid,
                AuthorizationCode.family_id.is_(None),
                AuthorizationCode.revoked_at.is_(None),
            )
        )
        if (family_id := revoke_code(session, code_id)) is not None
    }
    rows = session.scalars(select(Token).where(Token.sid == sid, Token.revoked_at.is_(None)))
    families |= {row.family_id for row in rows if OFFLINE_ACCESS not in row.scope.split()}
    return sum(revoke_family(session, family_id) for family_id in sorted(families))


def revoke_on_logout(login: Any, *, session: Session) -> int:
    """Receiver of ``idp.auth.session.logged_out``: the session's tokens end and its relying
    parties are told (back-channel logout)."""
    backchannel.announce(session, backchannel.notices_for_session(session, login.sid))
    revoked = revoke_for_login_session(session, login.sid)
    if revoked:
        audit.record(
            "oidc.tokens_ended_at_logout",
            actor="system",
            target=f"session:{login.sid[:8]}",
            details={"revoked": str(revoked)},
        )
    return revoked
