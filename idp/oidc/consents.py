"""Consent remembered per person and relying party (docs/protocol.md, "Consent").

A person is an operator's account, or an organisation for the certificate logins of its admin
(whoever holds the UKey acts for it). The grant records the scopes consented to; a later
request whose scopes are all among them needs no consent page, one asking for more asks again
for the whole set, and the grant then holds everything consented to so far. Revoking it ends
what the relying party holds for the person: its codes and refresh tokens, and its sessions
there (back-channel logout).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from idp import audit
from idp.db import utcnow
from idp.identity.principal import Principal
from idp.oidc import backchannel
from idp.oidc.models import Client, ConsentGrant
from idp.oidc.tokens import revoke_for_client

# What each scope gives the relying party, in the person's words (consent page, /account).
SCOPE_WORDS = {
    "openid": _l("您的账户标识和所属机构、角色"),
    "profile": _l("姓名"),
    "phone": _l("手机号"),
    "offline_access": _l("在您退出登录后继续访问以上信息（离线访问）"),
    "org.operators": _l("管理本机构的操作员（操作员管理）"),
    "org.reviews": _l("审核加入本机构的申请（用户审核）"),
}


def scope_words(scope: str) -> str:
    words = SCOPE_WORDS.get(scope)
    return str(words) if words is not None else scope


@dataclass(frozen=True)
class Holder:
    """Whose consent: an operator's account, or an organisation (its admin's logins)."""

    account_id: int | None
    org_id: int | None

    @classmethod
    def of(cls, principal: Principal) -> Holder:
        if principal.account is not None:
            return cls(account_id=principal.account.id, org_id=None)
        return cls(account_id=None, org_id=principal.org.id if principal.org else None)

    def matches(self) -> ColumnElement[bool]:
        if self.account_id is not None:
            return ConsentGrant.account_id == self.account_id
        return ConsentGrant.org_id == self.org_id


@dataclass(frozen=True)
class RememberedConsent:
    """A relying party the person consented to, as the /account page lists it."""

    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: datetime


def find(session: Session, holder: Holder, client_id: str) -> ConsentGrant | None:
    return session.scalar(
        select(ConsentGrant).where(holder.matches(), ConsentGrant.client_id == client_id)
    )


def covers(session: Session, holder: Holder, client_id: str, scope: str) -> bool:
    """Whether the person consented earlier to every scope of ``scope`` for this client."""
    grant = find(session, holder, client_id)
    return grant is not None and set(scope.split()) <= grant.scopes


def remember(session: Session, holder: Holder, client_id: str, scope: str) -> ConsentGrant:
    """Record the consent just given: the grant holds its scopes and every scope consented to
    before, dated now."""
    grant = find(session, holder, client_id)
    if grant is None:
        grant = ConsentGrant(
            account_id=holder.account_id, org_id=holder.org_id, client_id=client_id
        )
        session.add(grant)
        previous: set[str] = set()
    else:
        previous = grant.scopes
    grant.scope = " ".join(sorted(previous | set(scope.split())))
    grant.granted_at = utcnow()
    session.flush()
    return grant


def remembered(session: Session, holder: Holder) -> list[RememberedConsent]:
    """The relying parties the person consented to, by name."""
    rows = session.execute(
        select(ConsentGrant, Client)
        .join(Client, Client.client_id == ConsentGrant.client_id)
        .where(holder.matches())
        .order_by(ConsentGrant.granted_at.desc(), ConsentGrant.id.desc())
    )
    return [
        RememberedConsent(
            client_id=grant.client_id,
            client_name=client.name,
            scopes=sorted(grant.scopes),
            granted_at=grant.granted_at,
        )
        for grant, client in rows
    ]


def revoke(session: Session, holder: Holder, client_id: str, *, actor: str) -> bool:
    """Forget the consent and end what the client holds for the person: codes not yet
    redeemed, token families (refresh tokens included), and its sessions there, which are told
    by back-channel logout. False when there was no such consent (nothing changes)."""
    removed = session.execute(
        delete(ConsentGrant)
        .where(holder.matches(), ConsentGrant.client_id == client_id)
        .returning(ConsentGrant.id)
    ).all()
    if not removed:
        return False
    backchannel.announce(
        session,
        backchannel.notices_for_client(
            session, client_id, account_id=holder.account_id, org_id=holder.org_id
        ),
    )
    revoked = revoke_for_client(
        session, client_id, account_id=holder.account_id, org_id=holder.org_id
    )
    audit.record(
        "oidc.consent_revoked",
        actor=actor,
        target=f"client:{client_id}",
        org_id=holder.org_id,
        details={"tokens_revoked": str(revoked)},
    )
    return True
