"""Who may act as which identity: the one place that says which (organisation identity, role)
pairs a person may enter a relying party as, and whether a grant made earlier still holds.

- An operator acts for each organisation where their membership is active, as each of its
  identities whose org type the relying party allows.
- An org admin (a certificate login) acts as each of the organisation's identities registered
  for that relying party.
- Nobody acts for an organisation a platform admin has suspended (暂停使用): its admin's
  sessions, codes and tokens stop, and so do its operators' for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any, Literal, NamedTuple, Protocol

from sqlalchemy import JSON, FromClause, Select, and_, bindparam, event, select, type_coerce
from sqlalchemy.orm import Session

from idp import db
from idp.identity.models import (
    Account,
    Identity,
    IdentityRegistration,
    LegacyAccount,
    Membership,
    MembershipStatus,
    Organisation,
    OrgIdentity,
    OrgType,
    Role,
)
from idp.identity.principal import Principal, of_account, of_org_admin


class LoginRef(Protocol):
    """What a login session says about whom it belongs to (``idp.auth.session.LoginSession``)."""

    kind: str  # "operator" or "org_admin"
    account_id: int | None
    org_id: int | None
    created_at: float  # Unix time of the login


class RelyingParty(Protocol):
    """What eligibility needs to know of a client (``idp.oidc.models.Client``)."""

    client_id: str

    @property
    def org_types(self) -> list[str]: ...


def load_principal(session: Session, login: LoginRef | None) -> Principal | None:
    """Who ``login`` acts as; None when there is no session or its subject is gone (a deleted
    or disabled operator's session ends with their last active membership)."""
    if login is None:
        return None
    if login.kind == "org_admin":
        org = session.get(Organisation, login.org_id) if login.org_id is not None else None
        return of_org_admin(org) if org is not None and not org.suspended else None
    account = session.get(Account, login.account_id) if login.account_id is not None else None
    if account is None or not has_active_membership(session, account.id):
        return None
    return of_account(account)


def eligible_identities(
    session: Session, principal: Principal, *, client: RelyingParty
) -> list[Identity]:
    """The identities ``principal`` may enter ``client`` as (the client's allowed org types)."""
    if principal.account is not None:
        return operator_identities(session, principal.account, client=client)
    if principal.org is not None:
        return admin_identities(session, principal.org, client=client)
    return []


def operator_identities(
    session: Session, account: Account, *, client: RelyingParty
) -> list[Identity]:
    """Every (org identity, operator) pair of ``account`` whose org type ``client`` allows."""
    rows = db.run(
        session, _OPERATOR_IDENTITIES, {"account_id": account.id, "client_id": client.client_id}
    )
    return _identities(rows, role=Role.OPERATOR, client=client)


def admin_identities(
    session: Session, org: Organisation, *, client: RelyingParty
) -> list[Identity]:
    """The org's identities registered for ``client``, each as its org admin (none while the
    org is suspended)."""
    if org.suspended:
        return []
    rows = db.run(session, _ADMIN_IDENTITIES, {"org_id": org.id, "client_id": client.client_id})
    return _identities(rows, role=Role.ORG_ADMIN, client=client)


def _identities(rows: Iterable[Any], *, role: Role, client: RelyingParty) -> list[Identity]:
    return [
        Identity(
            org_id=row.id,
            uscc=row.uscc,
            org_name=row.name,
            org_type=row.org_type,
            role=role,
            legacy_account=row.account_ref,
        )
        for row in rows
        if row.org_type.value in client.org_types
    ]


def _with_registration(statement: Any, *, registered_only: bool) -> Any:
    """``statement`` (over org identities) with each identity's registration for the client
    and the legacy account bound to it, read along: one statement, however many identities."""
    registration = and_(
        IdentityRegistration.identity_id == OrgIdentity.id,
        IdentityRegistration.client_id == bindparam("client_id"),
    )
    joined = (
        statement.join(IdentityRegistration, registration)
        if registered_only
        else statement.outerjoin(IdentityRegistration, registration)
    )
    return joined.outerjoin(
        LegacyAccount, LegacyAccount.id == IdentityRegistration.legacy_account_id
    ).order_by(Organisation.id, OrgIdentity.id)


_IDENTITY_COLUMNS = (
    Organisation.id,
    Organisation.uscc,
    Organisation.name,
    OrgIdentity.org_type,
    LegacyAccount.account_ref,
)
# Built once: asked at every authorization.
_OPERATOR_IDENTITIES = _with_registration(
    select(*_IDENTITY_COLUMNS)
    .join(Membership, Membership.org_id == Organisation.id)
    .join(OrgIdentity, OrgIdentity.org_id == Organisation.id)
    .where(
        Membership.account_id == bindparam("account_id"),
        Membership.status == MembershipStatus.ACTIVE,
        Organisation.suspended_at.is_(None),
    ),
    registered_only=False,
)
_ADMIN_IDENTITIES = _with_registration(
    select(*_IDENTITY_COLUMNS)
    .join(OrgIdentity, OrgIdentity.org_id == Organisation.id)
    .where(Organisation.id == bindparam("org_id")),
    registered_only=True,
)


class Grantee(NamedTuple):
    """Who a code or token granted earlier acts for, as the token endpoint, userinfo and
    introspection need them: the person (or the organisation's admin) and their account."""

    subject: str
    name: str
    phone: str | None
    account_id: int | None  # None: an org admin

    @classmethod
    def of(cls, principal: Principal) -> Grantee:
        account_id = principal.account.id if principal.account is not None else None
        return cls(principal.subject, principal.name, principal.phone, account_id)


class OperatorStanding(NamedTuple):
    """An operator's standing in one organisation: the columns of ``OPERATOR_STANDING``."""

    suspended_at: datetime | None
    subject: str
    name: str
    phone: str | None
    must_change_password: bool
    credential_version: int
    status: MembershipStatus


# What decides whether an operator's grant still stands, and who it acts for: only these
# columns, as loading the three rows as objects cost twice as much as the lookup itself. Every
# token request, userinfo and introspection asks it: userinfo and introspection along with the
# token itself (``idp.oidc.presented``), code redemption and refresh on PostgreSQL along with
# the claim (``with_operator_standing``).
OPERATOR_STANDING = (
    Organisation.suspended_at,
    Account.subject,
    Account.name,
    Account.phone,
    Account.must_change_password,
    Account.credential_version,
    Membership.status,
)
_OPERATOR_STANDING = (
    select(*OPERATOR_STANDING)
    .join(Membership, Membership.org_id == Organisation.id)
    .join(Account, Account.id == Membership.account_id)
    .where(Organisation.id == bindparam("org_id"), Account.id == bindparam("account_id"))
)


class Unread(Enum):
    STANDING = "not read with the code or token"


NOT_READ = Unread.STANDING
# An operator's standing as read along with their code or token, or NOT_READ.
KnownStanding = OperatorStanding | None | Literal[Unread.STANDING]


def with_operator_standing(rows: FromClause) -> Select[Any]:
    """``rows`` (a code's or token's columns: ``account_id``, ``identity``) and, after them, the
    standing (``OPERATOR_STANDING``) of the account in the identity's organisation: all None
    where it has no membership there (``standing_in``)."""
    org_id = type_coerce(rows.c.identity, JSON)["org_id"].as_integer()
    return (
        select(rows, *OPERATOR_STANDING)
        .select_from(rows)
        .outerjoin(
            Membership,
            and_(Membership.account_id == rows.c.account_id, Membership.org_id == org_id),
        )
        .outerjoin(Organisation, Organisation.id == Membership.org_id)
        .outerjoin(Account, Account.id == Membership.account_id)
    )


def standing_in(columns: Iterable[Any]) -> OperatorStanding | None:
    """The standing from the columns of ``OPERATOR_STANDING`` as read by an outer join."""
    standing = OperatorStanding(*columns)
    return standing if standing.status is not None else None


def still_eligible(
    session: Session,
    identity: Identity,
    *,
    account_id: int | None,
    client_id: str,
    credential_version: int,
) -> Grantee | None:
    """Who a code or token granted earlier acts for, or None when it may no longer act as
    ``identity``: operator membership deleted or disabled, password change pending, password or
    phone changed since it was granted (``credential_version``), org identity no longer
    registered for the client, organisation suspended."""
    if identity.role == Role.ORG_ADMIN:
        org = session.get(Organisation, identity.org_id)
        if org is None or org.suspended:
            return None
        if not is_registered(session, org.id, identity.org_type, client_id):
            return None
        return Grantee.of(of_org_admin(org))
    if account_id is None:
        return None
    found = db.run(
        session, _OPERATOR_STANDING, {"org_id": identity.org_id, "account_id": account_id}
    ).first()
    standing = OperatorStanding._make(found) if found is not None else None
    return operator_grantee(standing, account_id=account_id, credential_version=credential_version)


def operator_grantee(
    standing: OperatorStanding | None, *, account_id: int, credential_version: int
) -> Grantee | None:
    """The operator an operator's grant acts for, or None when their standing (None: no
    membership of the organisation) no longer lets it act."""
    if standing is None or standing.status != MembershipStatus.ACTIVE:
        return None
    if standing.suspended_at is not None or standing.must_change_password:
        return None
    if not credentials_current(standing, credential_version):
        return None
    return Grantee(standing.subject, standing.name, standing.phone, account_id)


class Versioned(Protocol):
    @property
    def credential_version(self) -> int: ...


def credentials_current(account: Versioned, credential_version: int) -> bool:
    """Whether something opened at ``credential_version`` still stands: not when the account's
    password or phone changed since. Newer is fine: the session that made the change carries
    the new version a moment before the change is committed."""
    return credential_version >= account.credential_version


def has_active_membership(session: Session, account_id: int) -> bool:
    """True while the person is an active operator of at least one organisation that is not
    suspended."""
    return any(org.suspended_at is None for org in operator_orgs(session, account_id))


def only_suspended_orgs(session: Session, account_id: int) -> bool:
    """True when the person is an active operator only of suspended organisations (at least
    one): what refuses their login with the suspension's own message."""
    orgs = operator_orgs(session, account_id)
    return bool(orgs) and all(org.suspended_at is not None for org in orgs)


class OperatorOrg(NamedTuple):
    suspended_at: datetime | None
    sessions_ended_at: datetime | None


_OPERATOR_ORGS = (
    select(Organisation.suspended_at, Organisation.sessions_ended_at)
    .join(Membership, Membership.org_id == Organisation.id)
    .where(
        Membership.account_id == bindparam("account_id"),
        Membership.status == MembershipStatus.ACTIVE,
    )
)
OPERATOR_ORGS = "idp.operator_orgs"  # Session.info key, dropped when the session writes or ends


def operator_orgs(session: Session, account_id: int) -> list[OperatorOrg]:
    """The organisations where the person is an active operator, read once per transaction: a
    browser request asks it for its session check and again for whom the session acts as."""
    known: dict[int, list[OperatorOrg]] = session.info.setdefault(OPERATOR_ORGS, {})
    if account_id not in known:
        rows = db.run(session, _OPERATOR_ORGS, {"account_id": account_id})
        known[account_id] = [OperatorOrg._make(row) for row in rows]
    return known[account_id]


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_operator_orgs(session: Session, *_args: object) -> None:
    session.info.pop(OPERATOR_ORGS, None)


def ended_by_suspension(session: Session, login: LoginRef) -> bool:
    """Whether a login session is over because of a suspension: an org admin's while the org
    is suspended; an operator's whose every organisation is suspended; and any session of the
    org's admin or of one of its operators begun before a suspension (it stays over after the
    organisation is reactivated: the person logs in again)."""
    if login.kind == "org_admin":
        org = session.get(Organisation, login.org_id) if login.org_id is not None else None
        return org is not None and (org.suspended or _begun_before(login, org.sessions_ended_at))
    if login.account_id is None:
        return False
    orgs = operator_orgs(session, login.account_id)
    if any(_begun_before(login, org.sessions_ended_at) for org in orgs):
        return True
    return bool(orgs) and all(org.suspended_at is not None for org in orgs)


def _begun_before(login: LoginRef, ended_at: datetime | None) -> bool:
    return ended_at is not None and login.created_at < ended_at.timestamp()


def is_registered(session: Session, org_id: int, org_type: OrgType, client_id: str) -> bool:
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


def has_registrations(session: Session, org_id: int) -> bool:
    """True once the org holds an identity registered for at least one relying party."""
    found = session.scalar(
        select(IdentityRegistration.id)
        .join(OrgIdentity, OrgIdentity.id == IdentityRegistration.identity_id)
        .where(OrgIdentity.org_id == org_id)
        .limit(1)
    )
    return found is not None
