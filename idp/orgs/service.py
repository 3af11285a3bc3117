"""Organisations and their operator accounts (the minimal core; registration and the org admin
console build on these functions)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idp import audit
from idp.audit.models import AuditEvent
from idp.auth.models import Account
from idp.auth.passwords import generate_initial_password, hash_password, policy_errors
from idp.db import utcnow
from idp.errors import IdpError
from idp.orgs.models import (
    IdentityRegistration,
    LegacyAccount,
    Membership,
    MembershipStatus,
    Organisation,
    OrgIdentity,
    OrgType,
    Role,
)
from idp.orgs.uscc import is_valid_uscc
from idp.security import PHONE_RE, mask_name, mask_phone

if TYPE_CHECKING:
    from idp.auth.principal import Principal
    from idp.auth.session import LoginSession
    from idp.oidc.models import Client


class OrgError(IdpError):
    code = "invalid_org"


T = TypeVar("T")
MAX_PER_PAGE = 100
MAX_PAGE = 100_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list (console pages and the management API)."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def check_page(page: int, per_page: int) -> None:
    """Refuse page numbers and sizes a list cannot serve (page from 1, 1–100 a page)."""
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise OrgError(_("分页参数无效"))


def paginate(
    session: Session, stmt: Select[*tuple[Any, ...]], *, page: int, per_page: int
) -> tuple[list[Any], int]:
    """The rows of ``page`` of an ordered ``stmt`` and the total count of its rows."""
    check_page(page, per_page)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total or 0)


@dataclass(frozen=True)
class Identity:
    """The (organisation identity, role) pair a user enters a relying party as."""

    org_id: int
    uscc: str
    org_name: str
    org_type: str
    role: str
    legacy_account: str | None = None  # the org's bound account at this relying party

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def label(self) -> str:
        return f"{self.org_name} · {OrgType(self.org_type).label}"


def add_org(session: Session, *, uscc: str, name: str, org_type: str) -> Organisation:
    """Create an organisation with one identity, or add the identity to an existing one."""
    uscc = uscc.strip().upper()
    if not is_valid_uscc(uscc):
        raise OrgError(_("统一社会信用代码无效: %(uscc)s", uscc=uscc))
    if org_type not in {t.value for t in OrgType}:
        raise OrgError(_("未知的机构类型: %(type)s", type=org_type))
    if not name.strip() or len(name) > 200:
        raise OrgError(_("机构名称不能为空且不超过 200 字"))
    org = session.scalar(select(Organisation).where(Organisation.uscc == uscc))
    if org is None:
        org = Organisation(uscc=uscc, name=name.strip())
        session.add(org)
    if any(i.org_type == org_type for i in org.identities):
        raise OrgError(_("该机构已有此类型身份"))
    org.identities.append(OrgIdentity(org_type=OrgType(org_type)))
    session.flush()
    audit.record(
        "orgs.org_added",
        actor="cli",
        target=f"org:{org.id}",
        org_id=org.id,
        details={"org_type": org_type},
    )
    return org


def find_account_by_phone(session: Session, phone: str) -> Account | None:
    return session.scalar(select(Account).where(Account.phone == phone))


def find_org(session: Session, uscc: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.uscc == uscc.strip().upper()))


def add_operator(
    session: Session,
    *,
    org: Organisation,
    name: str,
    phone: str,
    password: str | None,
    created_by: str,
) -> tuple[Account, str | None]:
    """Give ``phone`` an operator membership in ``org``; creates the account when new.

    Returns the account and the generated initial password (None when one was given or the
    person already had an account). The first login always forces a password change."""
    if not PHONE_RE.fullmatch(phone) or not phone.isascii():  # fullmatch: no trailing newline
        raise OrgError(_("请输入 11 位手机号"))
    if not name.strip() or len(name) > 100:
        raise OrgError(_("姓名不能为空且不超过 100 字"))
    if password is not None and (errors := policy_errors(password, phone=phone, old_hash=None)):
        raise OrgError("; ".join(errors))
    account = session.scalar(select(Account).where(Account.phone == phone))
    generated = None
    if account is None:
        generated = None if password is not None else generate_initial_password()
        account = Account(
            phone=phone, name=name.strip(), password_hash=hash_password(password or generated or "")
        )
        session.add(account)
        session.flush()
    membership = session.scalar(
        select(Membership).where(Membership.account_id == account.id, Membership.org_id == org.id)
    )
    if membership is not None and membership.status == MembershipStatus.ACTIVE:
        raise OrgError(_("该手机号已是本机构的操作员"))
    if membership is None:
        session.add(Membership(account_id=account.id, org_id=org.id, created_by=created_by))
    else:  # a disabled or (soft-)deleted membership becomes usable again
        membership.status = MembershipStatus.ACTIVE
        membership.deleted_at = None
        membership.updated_at = utcnow()
    session.flush()
    audit.record(
        "orgs.operator_added",
        actor=created_by,
        target=f"{mask_name(name)} {mask_phone(phone)}",
        org_id=org.id,
    )
    return account, generated


def operator_identities(session: Session, account: Account, *, client: Client) -> list[Identity]:
    """Every (org identity, operator) pair of ``account`` whose org type ``client`` allows."""
    rows = session.execute(
        select(Organisation, OrgIdentity)
        .join(Membership, Membership.org_id == Organisation.id)
        .join(OrgIdentity, OrgIdentity.org_id == Organisation.id)
        .where(Membership.account_id == account.id, Membership.status == MembershipStatus.ACTIVE)
        .order_by(Organisation.id, OrgIdentity.id)
    )
    return [
        _identity(session, org, ident, role=Role.OPERATOR, client=client)
        for org, ident in rows
        if ident.org_type.value in client.org_types
    ]


def eligible_identities(
    session: Session, *, login: LoginSession, principal: Principal, client: Client
) -> list[Identity]:
    """The identities ``login`` may enter ``client`` as (the client's allowed org types)."""
    if principal.account is not None:
        return operator_identities(session, principal.account, client=client)
    if principal.org is not None:
        return admin_identities(session, principal.org, client=client)
    return []


def admin_identities(session: Session, org: Organisation, *, client: Client) -> list[Identity]:
    """The org's identities registered for ``client``, each as its org admin."""
    rows = session.scalars(
        select(OrgIdentity)
        .join(IdentityRegistration, IdentityRegistration.identity_id == OrgIdentity.id)
        .where(OrgIdentity.org_id == org.id, IdentityRegistration.client_id == client.client_id)
        .order_by(OrgIdentity.id)
    )
    return [
        _identity(session, org, ident, role=Role.ORG_ADMIN, client=client)
        for ident in rows
        if ident.org_type.value in client.org_types
    ]


def _identity(
    session: Session, org: Organisation, ident: OrgIdentity, *, role: Role, client: Client
) -> Identity:
    legacy = session.scalar(
        select(LegacyAccount.account_ref)
        .join(IdentityRegistration, IdentityRegistration.legacy_account_id == LegacyAccount.id)
        .where(
            IdentityRegistration.identity_id == ident.id,
            IdentityRegistration.client_id == client.client_id,
        )
    )
    return Identity(
        org_id=org.id,
        uscc=org.uscc,
        org_name=org.name,
        org_type=ident.org_type.value,
        role=role.value,
        legacy_account=legacy,
    )


def send_initial_password(account: Account, password: str) -> None:
    """初始密码以短信方式发送."""
    send_initial_password_to(account.phone, password)


def send_initial_password_to(phone: str, password: str, *, org_id: int | None = None) -> None:
    """初始密码以短信方式发送, also before the account is saved: the operator console sends first
    and saves only once the SMS went out, so a failed SMS leaves nothing behind."""
    from idp.sms import gateway
    from idp.sms.messages import render_message

    gateway().send(render_message(phone=phone, purpose="initial_password", password=password))
    audit.record(
        "orgs.initial_password_sent", actor="system", target=mask_phone(phone), org_id=org_id
    )


@dataclass(frozen=True)
class AuditEventView:
    """One event of an organisation's audit trail (targets are masked when recorded)."""

    id: int
    time: datetime
    actor: str
    action: str
    target: str
    result: str
    ip: str


def list_audit_events(
    session: Session, org: Organisation, *, page: int = 1, per_page: int = 20
) -> Page[AuditEventView]:
    """The org's audit events, newest first: what the org admin may see of the trail."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.org_id == org.id)
        .order_by(AuditEvent.time.desc(), AuditEvent.id.desc())
    )
    rows, total = paginate(session, stmt, page=page, per_page=per_page)
    items = [
        AuditEventView(
            id=e.id,
            time=e.time,
            actor=e.actor,
            action=e.action,
            target=e.target,
            result=e.result,
            ip=e.ip,
        )
        for (e,) in rows
    ]
    return Page(items=items, page=page, per_page=per_page, total=total)


def has_registrations(session: Session, org_id: int) -> bool:
    """True once the org holds an identity registered for at least one relying party."""
    found = session.scalar(
        select(IdentityRegistration.id)
        .join(OrgIdentity, OrgIdentity.id == IdentityRegistration.identity_id)
        .where(OrgIdentity.org_id == org_id)
        .limit(1)
    )
    return found is not None
