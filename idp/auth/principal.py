"""Who a login session acts as: an operator account, or an organisation's admin (whoever proved
a certificate carrying the organisation's USCC, DESIGN.md §3a)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.models import Account
from idp.auth.session import LoginSession
from idp.orgs.models import Membership, MembershipStatus, Organisation


@dataclass(frozen=True)
class Principal:
    subject: str  # the OIDC ``sub``
    name: str
    phone: str | None
    account: Account | None  # operators
    org: Organisation | None  # org admins

    @property
    def actor(self) -> str:
        """How audit events name this principal (no personal data)."""
        if self.account is not None:
            return f"account:{self.account.id}"
        return f"org_admin:{self.org.id if self.org else '?'}"

    @property
    def must_change_password(self) -> bool:
        return self.account is not None and self.account.must_change_password


def of_account(account: Account) -> Principal:
    return Principal(
        subject=account.subject, name=account.name, phone=account.phone, account=account, org=None
    )


def of_org_admin(org: Organisation) -> Principal:
    return Principal(subject=org.admin_subject, name=org.name, phone=None, account=None, org=org)


def load(session: Session, login: LoginSession | None) -> Principal | None:
    """The principal of ``login``; None when there is no session or its subject is gone."""
    if login is None:
        return None
    if login.kind == "org_admin":
        org = session.get(Organisation, login.org_id) if login.org_id is not None else None
        return of_org_admin(org) if org is not None else None
    account = session.get(Account, login.account_id) if login.account_id is not None else None
    if account is None or not _has_active_membership(session, account.id):
        return None  # a deleted or disabled operator's session ends with the membership
    return of_account(account)


def _has_active_membership(session: Session, account_id: int) -> bool:
    found = session.scalar(
        select(Membership.id)
        .where(Membership.account_id == account_id, Membership.status == MembershipStatus.ACTIVE)
        .limit(1)
    )
    return found is not None
