"""The resource owner Authlib hands around, and how a stored code or token finds it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.models import Account
from idp.auth.principal import Principal, of_account, of_org_admin
from idp.orgs.models import (
    IdentityRegistration,
    Membership,
    MembershipStatus,
    Organisation,
    OrgIdentity,
)


@dataclass(frozen=True)
class AuthorizedUser:
    """A principal acting as one identity, with how and when it authenticated."""

    subject: str
    name: str
    phone: str | None
    account_id: int | None
    identity: dict[str, Any]  # Identity.as_dict()
    sid: str | None = None
    auth_time: float | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None

    @classmethod
    def of(cls, principal: Principal, identity: dict[str, Any], **login: Any) -> AuthorizedUser:
        account_id = principal.account.id if principal.account is not None else None
        return cls(
            subject=principal.subject,
            name=principal.name,
            phone=principal.phone,
            account_id=account_id,
            identity=identity,
            **login,
        )

    def get_user_id(self) -> str:
        return self.subject


def user_for(session: Session, row: Any) -> AuthorizedUser | None:
    """The owner of a stored code or token (same columns), or None when it may no longer act
    as that identity: operator membership deleted or disabled, password change pending,
    org identity no longer registered for the client."""
    principal = _principal(session, row)
    if principal is None:
        return None
    return AuthorizedUser.of(
        principal,
        row.identity,
        sid=row.sid,
        auth_time=row.auth_time.timestamp() if row.auth_time else None,
        amr=tuple(row.amr),
        acr=getattr(row, "acr", None),
    )


def _principal(session: Session, row: Any) -> Principal | None:
    identity = row.identity
    if not identity:
        return None
    if identity["role"] == "org_admin":
        org = session.get(Organisation, identity["org_id"])
        registered = org is not None and is_registered(
            session, org.id, identity["org_type"], row.client_id
        )
        return of_org_admin(org) if org is not None and registered else None
    account = session.get(Account, row.account_id) if row.account_id is not None else None
    if account is None or account.must_change_password:
        return None
    if not membership_active(session, account.id, identity["org_id"]):
        return None
    return of_account(account)


def membership_active(session: Session, account_id: int, org_id: int) -> bool:
    status = session.scalar(
        select(Membership.status).where(
            Membership.account_id == account_id, Membership.org_id == org_id
        )
    )
    return status == MembershipStatus.ACTIVE


def is_registered(session: Session, org_id: int, org_type: str, client_id: str) -> bool:
    found = session.scalar(
        select(IdentityRegistration.id)
        .join(OrgIdentity, OrgIdentity.id == IdentityRegistration.identity_id)
        .where(
            OrgIdentity.org_id == org_id,
            OrgIdentity.org_type == org_type,
            IdentityRegistration.client_id == client_id,
        )
    )
    return found is not None
