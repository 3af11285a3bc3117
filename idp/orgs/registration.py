"""The registration wizard of journey 1 (docs/design.md §2, manual §1.1): which identities an
organisation may still register and for which relying parties, and the 否 path (a new
registration with the organisation's details). The 是 path (binding a legacy account) is in
``idp.orgs.legacy`` and shares :func:`add_identity`.

The organisation is always the one the verified certificate names: its USCC comes from the
login session, never from the submitted form.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp import audit
from idp.auth.session import LoginSession
from idp.errors import IdpError, NotFoundError
from idp.identity.lookup import find_org
from idp.identity.models import (
    ORG_TYPES,
    IdentityRegistration,
    LegacyAccount,
    Organisation,
    OrgIdentity,
    OrgType,
)
from idp.identity.uscc import is_valid_uscc
from idp.oidc.clients import login_clients
from idp.oidc.models import Client

# The word of the duplicate-USCC refusal: the manual writes 审价单位 for cost consulting there.
REGISTRATION_REFUSED = "orgs.registration_refused"

DUPLICATE_WORDS = {
    OrgType.AUDIT: _l("审计单位"),
    OrgType.COST_CONSULTING: _l("审价单位"),
    OrgType.BOOKKEEPING: _l("代理记账公司"),
}


class RegistrationError(IdpError):
    """The registration was refused; nothing was created."""

    code = "registration_failed"
    message = _l("注册失败")


class LegacyAccountExistsError(RegistrationError):
    """否 was chosen, but the relying party already has a legacy account of this USCC and type:
    the organisation must bind it (是) instead."""

    code = "legacy_account_exists"
    status = 409
    message = _l("维修资金系统已经存在统一社会信用代码（含组织机构代码）相同的机构，申请失败！")


@dataclass(frozen=True)
class Applicant:
    """The organisation a verified certificate speaks for (its USCC and name)."""

    uscc: str
    org_name: str

    @classmethod
    def of(cls, login: LoginSession | None) -> Applicant | None:
        """The applicant of an org admin login; None for any other session."""
        if login is None or login.kind != "org_admin" or not login.certificate:
            return None
        uscc = str(login.certificate.get("uscc", "")).strip().upper()
        if not uscc:
            return None
        return cls(uscc=uscc, org_name=str(login.certificate.get("org_name", "")).strip())

    @property
    def actor(self) -> str:
        """How audit events name the applicant (a USCC is public register data)."""
        return f"uscc:{self.uscc}"


@dataclass(frozen=True)
class OrgDetails:
    """What the registration form collects (validated by ``RegistrationForm``)."""

    name: str
    contact_person: str
    contact_phone: str
    address: str


def platforms(session: Session, org_type: OrgType) -> list[Client]:
    """The relying parties users log in to (code flow) that allow ``org_type``.

    Third-party org types may register only where a client allows them, which is how "目前仅可
    注册维修资金系统" is configured (``org_types`` of the client's metadata)."""
    return [c for c in login_clients(session) if org_type in c.org_types]


def held_types(org: Organisation | None) -> set[OrgType]:
    """The org types the organisation already holds: an identity registered for some RP.

    An identity without any registration (e.g. made by ``idp orgs add``) does not count: the
    wizard can still register it."""
    if org is None:
        return set()
    return {i.org_type for i in org.identities if i.registrations}


def registrable_types(session: Session, *, uscc: str) -> list[OrgType]:
    """The org types the wizard offers: not yet held, and allowed by at least one RP."""
    held = held_types(find_org(session, uscc))
    return [t for t in OrgType if t not in held and platforms(session, t)]


def check_registrable(session: Session, *, uscc: str, org_type: str) -> OrgType:
    """``org_type`` as an ``OrgType`` when the wizard offers it; otherwise 404."""
    offered = {t.value: t for t in registrable_types(session, uscc=uscc)}
    if org_type not in offered:
        raise NotFoundError(_("该注册类型不可用"))
    return offered[org_type]


def check_no_legacy_account(
    session: Session, *, uscc: str, org_type: OrgType, client_ids: list[str]
) -> None:
    """Refuse a new registration where a chosen RP already has this org as a legacy account."""
    found = session.scalar(
        select(LegacyAccount.id).where(
            LegacyAccount.uscc == uscc,
            LegacyAccount.org_type == org_type,
            LegacyAccount.client_id.in_(client_ids),
        )
    )
    if found is not None:
        raise LegacyAccountExistsError(
            _(
                "维修资金系统已经存在统一社会信用代码（含组织机构代码）相同的%(type)s，申请失败！",
                type=DUPLICATE_WORDS[org_type],
            )
        )


def check_platforms(session: Session, *, org_type: OrgType, client_ids: list[str]) -> None:
    """At least one platform, and only platforms that allow ``org_type``."""
    allowed = {c.client_id for c in platforms(session, org_type)}
    if not client_ids or not set(client_ids) <= allowed:
        raise RegistrationError(_("请选择要注册的平台"))


def register(
    session: Session,
    *,
    applicant: Applicant,
    org_type: OrgType,
    details: OrgDetails,
    client_ids: list[str],
) -> Organisation:
    """The 否 path: register ``org_type`` for ``client_ids`` (creating the organisation when
    new, updating its details otherwise). Every check runs before the first write; a refusal
    is audited where the organisation, if it exists, reads its 操作日志."""
    try:
        check_platforms(session, org_type=org_type, client_ids=client_ids)
        check_no_legacy_account(
            session, uscc=applicant.uscc, org_type=org_type, client_ids=client_ids
        )
        org, _identity = add_identity(
            session,
            uscc=applicant.uscc,
            name=details.name,
            org_type=org_type,
            client_ids=client_ids,
        )
    except IdpError as error:
        existing = find_org(session, applicant.uscc)
        audit.record(
            REGISTRATION_REFUSED,
            actor=applicant.actor,
            target=f"org:{existing.id}" if existing else "",
            result=error.code,
            org_id=existing.id if existing else None,
            details={"org_type": org_type.value},
        )
        raise
    org.name = details.name
    org.contact_person = details.contact_person
    org.contact_phone = details.contact_phone
    org.address = details.address
    audit.record(
        "orgs.registered",
        actor=applicant.actor,
        target=f"org:{org.id}",
        org_id=org.id,
        details={"org_type": org_type.value, "clients": ",".join(client_ids)},
    )
    return org


def add_identity(
    session: Session,
    *,
    uscc: str,
    name: str,
    org_type: OrgType,
    client_ids: list[str],
    legacy_account: LegacyAccount | None = None,
) -> tuple[Organisation, OrgIdentity]:
    """The organisation of ``uscc`` (created with ``name`` when new) holding ``org_type``,
    registered for each of ``client_ids``; flushed, so both have ids."""
    org = find_org(session, uscc)
    if org is None:
        org = Organisation(uscc=uscc, name=name[:200] or uscc)
        session.add(org)
    identity = next((i for i in org.identities if i.org_type == org_type), None)
    if identity is None:
        identity = OrgIdentity(org_type=org_type)
        org.identities.append(identity)
    registered = {r.client_id for r in identity.registrations}
    if registered & set(client_ids):
        raise RegistrationError(_("该身份已注册所选平台"))
    for client_id in client_ids:
        identity.registrations.append(
            IdentityRegistration(client_id=client_id, legacy_account=legacy_account)
        )
    try:
        session.flush()
    except IntegrityError as error:  # the same organisation registered at the same instant
        # The failed INSERT leaves the transaction unusable; the refusal is recorded in a new one.
        session.rollback()
        raise RegistrationError(_("该机构已存在，请刷新页面后重试")) from error
    return org, identity


def add_org(session: Session, *, uscc: str, name: str, org_type: str) -> Organisation:
    """``idp orgs add``: an organisation with one identity, or the identity added to an existing
    organisation, registered for no relying party yet."""
    uscc = uscc.strip().upper()
    if not is_valid_uscc(uscc):
        raise RegistrationError(_("统一社会信用代码无效：%(uscc)s", uscc=uscc))
    if org_type not in ORG_TYPES:
        raise RegistrationError(_("未知的机构类型：%(type)s", type=org_type))
    if not name.strip() or len(name) > 200:
        raise RegistrationError(_("机构名称不能为空且不超过 200 字"))
    org = find_org(session, uscc)
    if org is None:
        org = Organisation(uscc=uscc, name=name.strip())
        session.add(org)
    if any(i.org_type == org_type for i in org.identities):
        raise RegistrationError(_("该机构已有此类型身份"))
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
