"""Authlib grant subclasses: what Authlib leaves to the provider (docs/protocol.md P2, P4, P8, P9).

- codes and refresh tokens are claimed atomically (one UPDATE ... WHERE consumed/rotated IS NULL);
- a reused code revokes what it issued (RFC 6749 §4.1.2); a reused refresh token revokes its
  whole family (RFC 9700 §4.14.2); a replay seen while the first redemption is still issuing
  marks the code or family first, so that issuance is refused (``tokens.issue``);
- PKCE is S256 only and required for public clients or where the client asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from sqlalchemy import String, bindparam, cast, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp import audit, db
from idp.config import settings
from idp.db import table_of, utcnow
from idp.identity.eligibility import NOT_READ, KnownStanding, standing_in, with_operator_standing
from idp.oidc import claims, refresh_grace, requested_claims
from idp.oidc.models import AuthorizationCode, Client, Token, digest
from idp.oidc.tokens import (
    find_refresh_token,
    generate_token_value,
    revoke_code,
    revoke_family,
)
from idp.oidc.users import AuthorizedUser, user_for

# Client authentication (RFC 6749 §2.3): a secret or a private key (RFC 7523) for confidential
# clients; "none" only for public clients, which use PKCE.
SECRET_JWT = "client_secret_jwt"
# the methods that use a secret the provider issues
SECRET_AUTH_METHODS = ["client_secret_basic", "client_secret_post", SECRET_JWT]
CONFIDENTIAL_AUTH_METHODS = [*SECRET_AUTH_METHODS, "private_key_jwt"]
AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]


class StrictCodeChallenge(CodeChallenge):
    """PKCE with S256 only (RFC 9700 §2.1.1): ``plain`` and a missing method are refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012  (Authlib's class attribute)

    def validate_code_challenge(self, grant: grants.BaseGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        client: Client = grant.request.client
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        if client.require_pkce and not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge (PKCE, S256) is required for this client")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str | None:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(
        self, authorization_code: AuthorizationCode
    ) -> str | None:
        return authorization_code.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def generate_authorization_code(self) -> str:
        """256 bits, as the tokens: Authlib's own draws each of its characters from the
        system's random source in a call of its own: 32 µs a code against 0.6."""
        return generate_token_value()

    def save_authorization_code(self, code: str, request: Any) -> AuthorizationCode:
        user: AuthorizedUser = request.user
        data = request.payload.data
        now = utcnow()
        item = AuthorizationCode(
            code_hash=digest(code),
            client_id=request.client.client_id,
            account_id=user.account_id,
            identity=user.identity,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=db.datetime_from_timestamp(user.auth_time or now.timestamp()),
            amr=list(user.amr),
            acr=user.acr,
            claims=requested_claims.parse(data.get("claims")),  # checked at /authorize
            sid=user.sid or "",
            credential_version=user.credential_version,
            issued_at=now,
            expires_at=now + timedelta(seconds=settings().code_ttl),
        )
        db.session().add(item)
        return item

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """Claim the code: of concurrent redemptions exactly one UPDATE matches; the claim is
        committed at once so a failed exchange cannot be retried with the same code. The claim
        is audited with it: a code used up by an exchange that never answered (a worker killed,
        a connection lost) is still on record, with the client that used it."""
        session = db.session()
        code_hash = digest(code)
        # UPDATE … RETURNING: the claimed row comes back with the claim (one statement); only
        # a code not claimed now is read again, to tell a replay from an unknown code.
        claim = {"digest": code_hash, "for_client": client.client_id, "now": utcnow()}
        item, self.request.claimed_standing = claim_code(session, claim)
        if item is not None:
            return item
        item = session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
        )
        if item is not None and item.consumed_at is not None and item.client_id == client.client_id:
            revoke_replayed_code(session, item, client)
        return None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Kept (consumed) so that a replay can find and revoke what it issued."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> AuthorizedUser | None:
        standing = getattr(self.request, "claimed_standing", NOT_READ)
        return user_for(db.session(), authorization_code, standing=standing)


def claim_code(
    session: Session, claim: dict[str, Any]
) -> tuple[AuthorizationCode | None, KnownStanding]:
    """The code claimed now, committed with its audit event, and its operator's standing.
    Where statements stand alone (PostgreSQL) one statement, which reads the standing too;
    else the claim and the event in a transaction of their own."""
    actor = f"client:{claim['for_client']}"
    if db.stands_alone(session):
        event = audit.event_values("oidc.code_redeemed", actor=actor)
        row = db.first(session, _CLAIM_CODE_AUDITED, {**claim, **event})
        if row is None:
            return None, NOT_READ
        audit.counted(event)
        return _claimed(AuthorizationCode, row), standing_in(row[len(_codes.c) :])
    row = db.first(session, _CLAIM_CODE, claim)
    if row is not None:
        audit.record("oidc.code_redeemed", actor=actor, target=f"code:{row.id}")
    session.commit()
    return (_claimed(AuthorizationCode, row) if row is not None else None), NOT_READ


def claim_refresh_token(
    session: Session, claim: dict[str, Any]
) -> tuple[Token | None, KnownStanding]:
    """The refresh token claimed (rotated) now, and its operator's standing, read with the
    claim where statements stand alone (PostgreSQL)."""
    if db.stands_alone(session):
        row = db.first(session, _CLAIM_REFRESH_TOKEN_WITH_STANDING, claim)
        if row is None:
            return None, NOT_READ
        return _claimed(Token, row), standing_in(row[len(_tokens.c) :])
    row = db.first(session, _CLAIM_REFRESH_TOKEN, claim)
    return (_claimed(Token, row) if row is not None else None), NOT_READ


ClaimedRow = TypeVar("ClaimedRow", AuthorizationCode, Token)


def _claimed(model: type[ClaimedRow], row: Sequence[Any]) -> ClaimedRow:
    """The claimed row, the first columns of ``row`` (the standing's follow where it was read
    too), as an object of the request's own (it is only read after)."""
    columns = model.__table__.columns
    return db.unattached(model, dict(zip(columns.keys(), row[: len(columns)], strict=True)))


def revoke_replayed_code(session: Session, item: AuthorizationCode, client: Client) -> None:
    """RFC 6749 §4.1.2: revoke everything the replayed code issued. The code's mark is
    committed first: a redemption still issuing from it is then refused, and one that already
    issued has its family named by the mark and revoked."""
    family_id = revoke_code(session, item.id)
    session.commit()
    revoked = revoke_family(session, family_id) if family_id is not None else 0
    audit.record(
        "oidc.code_reused",
        actor=f"client:{client.client_id}",
        target=f"code:{item.id}",
        result="tokens_revoked",
        details={"revoked": str(revoked)},
    )
    session.commit()


# The claims of a code and of a refresh token, built once (statement building cost more CPU
# than running them). UPDATE … RETURNING: the claimed row comes back with the claim. Plain
# table statements, the row made into an object of this request's own (it is only read after):
# the ORM's path for DML with RETURNING cost more than the round trip.
_codes = table_of(AuthorizationCode)
_CLAIM_CODE = (
    update(_codes)
    .where(
        _codes.c.code_hash == bindparam("digest"),
        _codes.c.client_id == bindparam("for_client"),
        _codes.c.consumed_at.is_(None),
        _codes.c.expires_at > bindparam("now"),
    )
    .values(consumed_at=bindparam("now"))
    .returning(*_codes.c)
)
_claimed_code = _CLAIM_CODE.cte("claimed")
_CLAIM_CODE_AUDITED = with_operator_standing(_claimed_code).add_cte(
    audit.recorded_with(_claimed_code, literal("code:") + cast(_claimed_code.c.id, String))
)
_tokens = table_of(Token)
_CLAIM_REFRESH_TOKEN = (
    update(_tokens)
    .where(
        _tokens.c.refresh_token_hash == bindparam("digest"),
        _tokens.c.client_id == bindparam("for_client"),
        _tokens.c.rotated_at.is_(None),
        _tokens.c.revoked_at.is_(None),
        _tokens.c.refresh_expires_at > bindparam("now"),
    )
    .values(rotated_at=bindparam("now"))
    .returning(*_tokens.c)
)

_CLAIM_REFRESH_TOKEN_WITH_STANDING = with_operator_standing(_CLAIM_REFRESH_TOKEN.cte("claimed"))
_REVOKE_TOKEN = (
    update(_tokens)
    .where(_tokens.c.id == bindparam("token_id"), _tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        """Rotate atomically; presenting an already rotated token revokes the family."""
        session = db.session()
        token_hash = digest(refresh_token)
        now = utcnow()
        claim = {"digest": token_hash, "for_client": self.request.client.client_id, "now": now}
        token, self.request.claimed_standing = claim_refresh_token(session, claim)
        claimed = 0 if token is None else 1
        db.commit_now(session)
        if token is None:
            token = find_refresh_token(session, refresh_token)
        if token is None or token.client_id != self.request.client.client_id:
            return None
        if claimed == 1 and (token.family_expires_at is None or now < token.family_expires_at):
            return token
        if token.rotated_at is not None and claimed == 0:
            session.commit()  # no read transaction open while waiting for a parallel rotation
            kept = self.kept_successor(token, refresh_token, now)
            if kept is not None:
                self.request.kept_response = kept
                return token
            revoke_family(session, token.family_id)
            audit.record(
                "oidc.refresh_token_reused",
                actor=f"client:{token.client_id}",
                target=f"family:{token.family_id[:8]}",
                result="family_revoked",
            )
            session.commit()
        return None

    def kept_successor(self, token: Token, value: str, now: datetime) -> dict[str, Any] | None:
        """Within the client's reuse interval, the response that rotated ``token``, while its
        refresh token is still the family's live one (docs/protocol.md, reuse interval)."""
        interval = self.request.client.refresh_token_reuse_interval
        rotated_at = token.rotated_at
        if not interval or rotated_at is None or (now - rotated_at).total_seconds() > interval:
            return None
        response = refresh_grace.recall(value, wait=True)
        if response is None:
            return None
        successor = find_refresh_token(db.session(), response["refresh_token"])
        if successor is None or successor.rotated_at or successor.revoked_at:
            return None
        audit.record(
            "oidc.refresh_token_reused_within_interval",
            actor=f"client:{token.client_id}",
            target=f"family:{token.family_id[:8]}",
            result="same_successor",
        )
        return response

    def authenticate_user(self, refresh_token: Token) -> AuthorizedUser | None:
        """Checked once per request: ``create_token_response`` below asks first, Authlib's
        asks again in the same transaction."""
        checked = getattr(self.request, "checked_user", None)
        if checked is None or checked[0] is not refresh_token:
            standing = getattr(self.request, "claimed_standing", NOT_READ)
            checked = (refresh_token, user_for(db.session(), refresh_token, standing=standing))
            self.request.checked_user = checked
        user: AuthorizedUser | None = checked[1]
        return user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """The old access token dies with the rotation; the row stays for reuse detection.
        Written at once by a plain UPDATE (no flush of the unit of work), and kept in step on
        the loaded row."""
        if refresh_token.revoked_at is not None:
            return
        now = utcnow()
        db.write(db.session(), _REVOKE_TOKEN, {"token_id": refresh_token.id, "now": now})
        set_committed_value(refresh_token, "revoked_at", now)

    def create_token_response(self) -> Any:
        kept = getattr(self.request, "kept_response", None)
        if kept is not None:
            return 200, kept, self.TOKEN_RESPONSE_HEADER
        user = self.authenticate_user(self.request.refresh_token)
        if user is None:
            raise InvalidGrantError("The account can no longer use this token.")
        status, body, headers = super().create_token_response()
        if "openid" in body.get("scope", "").split():
            # OIDC Core §12.2: a fresh ID token for the same person and session, no nonce.
            body["id_token"] = claims.issue_id_token(
                client=self.request.client,
                user=user,
                scope=body["scope"],
                access_token=body["access_token"],
                nonce=None,
                requested=self.request.refresh_token.claims,
            )
        interval = self.request.client.refresh_token_reuse_interval
        if interval:
            # Kept only once the successor is stored: a parallel refresh that finds the
            # response must also find its refresh token live.
            db.commit_now(db.session())
            refresh_grace.keep(self.request.payload.data["refresh_token"], body, interval)
        return status, body, headers


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """For relying-party back-ends; scopes outside the client's registration are refused."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        requested = set((self.request.payload.scope or "").split())
        if not requested <= set(self.request.client.scope.split()) or "openid" in requested:
            raise InvalidScopeError()


class IdTokenExtension(OpenIDCode):
    """Issues the ID token with our claims, signed through the KeyStore (STYLE rule 4)."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # Nonce replay is the RP's check (OIDC Core §15.5.2); codes are single use here.
        return False

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        return claims.issue_id_token(
            client=request.client,
            user=request.user,
            scope=token["scope"],
            access_token=token.get("access_token"),
            nonce=request.authorization_code.get_nonce(),
            requested=request.authorization_code.claims,
        )
