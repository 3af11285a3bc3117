"""OpenID Connect Back-Channel Logout 1.0: relying parties learn at once when a session ends.

When a login session ends (logout), everything an account was issued ends (its password or
phone changed, the operator deleted or disabled) or everything acting for an organisation ends
(a platform admin suspended it), every relying party that was issued a code in
those sessions and registered a ``backchannel_logout_uri`` is sent a logout token: a JWT signed
like its ID tokens, with ``iss aud iat exp jti events sid sub`` and no ``nonce`` (§2.4), typed
``logout+jwt``. Notices are queued only once the decision is committed, and delivered by
``idp worker`` (the queue the SMS use), retried with backoff when the relying party does not
answer 200 or 204 (``IDP_BACKCHANNEL_LOGOUT_RETRIES``, ``…_RETRY_DELAY``, times 3 each time);
each outcome is an audit event. The token is made at delivery, so a retry carries a fresh one.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import Flask
from huey.api import TaskWrapper
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from idp import audit, context, db
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError
from idp.identity.models import Account, Membership, Organisation
from idp.oidc.claims import SIGNING_ALGS
from idp.oidc.models import AuthorizationCode, Client
from idp.oidc.subjects import subject_for
from idp.signing import key_store
from idp.signing.jws import encode_jwt
from idp.sms.queue import worker_task

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_LIFETIME = 120  # seconds: a notice is acted on at once or not at all
TASK_NAME = "deliver_backchannel_logout"
DELIVERED = "oidc.backchannel_logout_delivered"
RETRYING = "oidc.backchannel_logout_retrying"
FAILED = "oidc.backchannel_logout_failed"
ANNOUNCED = "backchannel_announced"

http = requests.Session()


class BackchannelLogoutError(IdpError):
    """The relying party did not accept the notice (retried by the worker)."""

    code = "backchannel_logout_failed"


@dataclass(frozen=True)
class Notice:
    """Tell ``client_id`` that the session ``sid`` of ``subject`` has ended."""

    client_id: str
    subject: str
    sid: str


# --- who is told --------------------------------------------------------------------------------


def notices_for_session(session: Session, sid: str) -> set[Notice]:
    codes = session.scalars(select(AuthorizationCode).where(AuthorizationCode.sid == sid))
    return _notices(session, codes)


def notices_at_client(session: Session, client_id: str) -> set[Notice]:
    """Every session that may still be open at ``client_id`` (the client is being disabled)."""
    codes = session.scalars(
        select(AuthorizationCode).where(
            AuthorizationCode.client_id == client_id, AuthorizationCode.issued_at > _horizon()
        )
    )
    return _notices(session, codes)


def notices_for_account(session: Session, account_id: int, *, org_id: int | None) -> set[Notice]:
    """The sessions of the account that may still be open at a relying party: those issued a
    code within the longest a login or its refresh tokens can last."""
    codes = session.scalars(
        select(AuthorizationCode).where(
            AuthorizationCode.account_id == account_id,
            AuthorizationCode.issued_at > _horizon(),
        )
    )
    return _notices(
        session,
        [c for c in codes if org_id is None or (c.identity and c.identity.org_id == org_id)],
    )


def notices_for_org(session: Session, org_id: int) -> set[Notice]:
    """The sessions that may still be open at a relying party acting for the organisation, as
    its admin or as one of its operators (issued a code within the same horizon)."""
    codes = session.scalars(
        select(AuthorizationCode).where(
            held_for_org(AuthorizationCode.account_id, org_id),
            AuthorizationCode.issued_at > _horizon(),
        )
    )
    return _notices(session, [c for c in codes if c.identity and c.identity.org_id == org_id])


def held_by(column: Any, account_id: int | None) -> Any:
    """A condition on a code's or token's ``account_id`` column: the operator's account, or
    with ``account_id`` None the account-less rows of org admins' certificate logins."""
    return column == account_id if account_id is not None else column.is_(None)


def held_for_org(account_id: Any, org_id: int) -> Any:
    """A condition on a code's or token's ``account_id`` narrowing it to those that may act for
    the organisation: its members' (operators) and account-less ones (org admins' certificate
    logins); the caller checks the identity's org, which lives in a JSON column."""
    members = select(Membership.account_id).where(Membership.org_id == org_id)
    return or_(account_id.is_(None), account_id.in_(members))


def _horizon() -> datetime:
    seconds = max(settings().session_absolute_ttl, settings().refresh_token_absolute_ttl)
    return utcnow() - timedelta(seconds=seconds)


def notices_for_client(
    session: Session, client_id: str, *, account_id: int | None, org_id: int | None
) -> set[Notice]:
    """The sessions one person (an operator's account, or with ``account_id`` None an
    organisation's admin) may still have open at ``client_id``."""
    codes = session.scalars(
        select(AuthorizationCode).where(
            held_by(AuthorizationCode.account_id, account_id),
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.issued_at > _horizon(),
        )
    )
    return _notices(
        session,
        [
            c
            for c in codes
            if account_id is not None or (c.identity and c.identity.org_id == org_id)
        ],
    )


def _notices(session: Session, codes: Iterable[AuthorizationCode]) -> set[Notice]:
    found: set[Notice] = set()
    for code in codes:
        subject = _subject(session, code)
        if subject is not None:
            subject = subject_for(find_client(session, code.client_id), subject)
        if code.sid and subject:
            found.add(Notice(client_id=code.client_id, subject=subject, sid=code.sid))
    return found


def _subject(session: Session, code: AuthorizationCode) -> str | None:
    if code.account_id is not None:
        return session.scalar(select(Account.subject).where(Account.id == code.account_id))
    if code.identity is not None:
        org_id = code.identity.org_id
        return session.scalar(select(Organisation.admin_subject).where(Organisation.id == org_id))
    return None


def announce(session: Session, notices: set[Notice]) -> int:
    """Queue a notice for each relying party that asked for them, once the transaction
    commits; returns how many were queued."""
    queued = 0
    # One change may end the same session twice (a new phone, and the operator disabled).
    announced: set[Notice] = session.info.setdefault(ANNOUNCED, set())
    for notice in sorted(notices - announced, key=lambda n: (n.client_id, n.sid)):
        announced.add(notice)
        client = find_client(session, notice.client_id)
        if client is not None and client.backchannel_logout_uri:
            db.after_commit(functools.partial(enqueue, notice))
            queued += 1
    return queued


def enqueue(notice: Notice) -> None:
    task: TaskWrapper = context.app().extensions["idp.backchannel_task"]
    task(json.dumps(asdict(notice)))


def find_client(session: Session, client_id: str) -> Client | None:
    return session.scalar(select(Client).where(Client.client_id == client_id))


# --- the logout token and its delivery ----------------------------------------------------------


def logout_token(client: Client, notice: Notice) -> str:
    """§2.4: signed with the client's ID token algorithm; ``sid`` and ``sub``, never a nonce."""
    alg = client.id_token_alg if client.id_token_alg in SIGNING_ALGS else "ES256"
    now = int(utcnow().timestamp())
    claims = {
        "iss": settings().issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "jti": secrets.token_urlsafe(16),
        "sub": notice.subject,
        "sid": notice.sid,
        "events": {EVENT: {}},
    }
    return encode_jwt(key_store(), key_store().signing_key(alg), claims, typ="logout+jwt")


def deliver(notice: Notice, *, retries_left: int) -> None:
    """One attempt of the worker; raises ``BackchannelLogoutError`` to be retried."""
    client = find_client(db.session(), notice.client_id)
    uri = client.backchannel_logout_uri if client is not None else None
    if client is None or not uri:
        return  # the client was removed or stopped asking meanwhile
    try:
        response = http.post(
            uri,
            data={"logout_token": logout_token(client, notice)},
            timeout=settings().backchannel_logout_timeout,
            allow_redirects=False,  # §2.8: the answer is 200 or 204; a redirect is a failure
        )
        outcome = (
            "success" if response.status_code in (200, 204) else f"http_{response.status_code}"
        )
    except requests.RequestException as error:
        outcome = type(error).__name__
    if outcome == "success":
        record(DELIVERED, notice)
        return
    log.warning(
        "back-channel logout to %s failed (%s), %d retries left", uri, outcome, retries_left
    )
    if retries_left:
        record(RETRYING, notice, result=outcome)
        raise BackchannelLogoutError(detail=outcome)
    record(FAILED, notice, result=outcome)


def record(action: str, notice: Notice, *, result: str = "success") -> None:
    audit.record(
        action,
        actor="system",
        target=f"client:{notice.client_id}",
        result=result,
        details={"sid": notice.sid[:8]},
    )


def init_app(app: Flask) -> None:
    """Register the worker's task on the delivery queue (the web process enqueues it)."""
    config = app.extensions["idp"]
    app.extensions["idp.backchannel_task"] = worker_task(
        app,
        lambda message, retries_left: deliver(
            Notice(**json.loads(message)), retries_left=retries_left
        ),
        name=TASK_NAME,
        retries=config.backchannel_logout_retries,
        retry_delay=config.backchannel_logout_retry_delay,
    )
