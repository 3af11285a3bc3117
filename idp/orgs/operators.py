"""操作员管理 (docs/design.md journey 3, manual §1.3): an org admin's operators — list, 【增加】,
【查询】, 【修改】 (phone and status only) and 【删除】 (soft).

The console pages and the management API both call these functions. They take the organisation
explicitly (the caller's guard decides whose it is), never read the request, raise ``IdpError``
subclasses carrying the user's message, and return plain dataclasses. Every change, and every
refused attempt, writes an audit event with the org's id and masked personal data.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp import audit, metrics
from idp.auth import sms_delivery
from idp.auth.credentials import credentials_changed
from idp.auth.passwords import generate_initial_password, hash_password, joined, policy_errors
from idp.auth.sms_delivery import Delivery
from idp.db import utcnow
from idp.errors import IdpError, NotFoundError
from idp.identity.lookup import find_account_by_phone
from idp.identity.models import ID_MAX, Account, Membership, MembershipStatus, Organisation
from idp.identity.phone import is_phone
from idp.oidc.tokens import revoke_for_account
from idp.orgs.realname_limits import Asker, limited_verdict
from idp.pagination import Page, paginate
from idp.realname import RealNameUnavailableError, Verdict
from idp.security import mask_name, mask_phone

ADDED = "orgs.operator_added"
UPDATED = "orgs.operator_updated"
DELETED = "orgs.operator_deleted"
NOTICE_SENT = "orgs.operator_notice_sent"
INITIAL_PASSWORD_SENT = "orgs.initial_password_sent"  # noqa: S105  (an event name)

EDITABLE_STATUSES = (MembershipStatus.ACTIVE, MembershipStatus.DISABLED)
STATUS_LABELS = {
    MembershipStatus.ACTIVE: _l("启用"),
    MembershipStatus.DISABLED: _l("停用"),
    MembershipStatus.DELETED: _l("已删除"),
}
MAX_NAME = 100
MAX_QUERY = 50


# --- errors -------------------------------------------------------------------------------------


class OperatorError(IdpError):
    """A refused operator change; ``field`` names the form field the message belongs to."""

    code = "invalid_operator"


class RealNameMismatchError(OperatorError):
    """手机二要素校验: the carrier says this phone does not belong to this name (docs/design.md, manual §1.3)."""

    code = "realname_mismatch"
    message = _l("您填写的身份信息与手机号认证失败，请确认信息是否填写正确。")


class OperatorExistsError(OperatorError):
    code = "operator_exists"
    status = 409
    message = _l("该手机号已是本机构的操作员")
    field = "phone"


class NameConflictError(OperatorError):
    """The phone's account was opened under another name: the person must be the same one."""

    code = "name_conflict"
    status = 409
    message = _l("该手机号已登记的姓名与填写的姓名不一致，请确认信息是否填写正确。")
    field = "name"


class PhoneTakenError(OperatorError):
    code = "phone_taken"
    status = 409
    message = _l("该手机号已被其他账户使用")
    field = "phone"


class SharedAccountError(OperatorError):
    """The phone is the person's login everywhere: another org's membership would move too."""

    code = "account_shared"
    status = 409
    message = _l("该操作员同时是其他机构的操作员，不能在此修改手机号码")
    field = "phone"


class ReadOnlyFieldError(OperatorError):
    code = "read_only_field"
    message = _l("只能修改手机号码和操作员状态")


class OperatorDeletedError(OperatorError):
    code = "operator_deleted"
    status = 409
    message = _l("该操作员已删除")


class OperatorNotFoundError(NotFoundError):
    code = "operator_not_found"
    message = _l("操作员不存在")


# --- views --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorView:
    """An operator as the console and the API show it; ``id`` is the membership's."""

    id: int
    name: str
    phone: str
    status: str
    created_by: str
    created_at: datetime
    last_login_at: datetime | None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    @classmethod
    def of(cls, membership: Membership, account: Account) -> OperatorView:
        return cls(
            id=membership.id,
            name=account.name,
            phone=account.phone,
            status=membership.status.value,
            created_by=membership.created_by,
            created_at=membership.created_at,
            last_login_at=account.last_login_at,
            updated_at=membership.updated_at,
            deleted_at=membership.deleted_at,
        )

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[MembershipStatus(self.status)])


@dataclass(frozen=True)
class OperatorAdded:
    """What 【增加】 (or 通过 of a join request) did: the operator, and whether an initial
    password went out by SMS (False: the person already had an account and was notified)."""

    operator: OperatorView
    initial_password_sent: bool
    account_id: int


# --- input checks -------------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """The name as on the ID card: 1–100 characters, no control characters."""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise OperatorError(_("请输入姓名"), field="name")
    if len(name) > MAX_NAME:
        raise OperatorError(_("姓名不能超过 %(n)d 字", n=MAX_NAME), field="name")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise OperatorError(_("姓名含有无效字符"), field="name")
    return name


def clean_phone(phone: str) -> str:
    """An 11-digit mainland mobile number in ASCII digits."""
    return checked_phone(phone.strip() if isinstance(phone, str) else "")


def checked_phone(phone: str) -> str:
    """``phone`` exactly as given, when it is a mobile number (a command line's argument)."""
    if not is_phone(phone):
        raise OperatorError(_("请输入 11 位手机号"), field="phone")
    return phone


def person_target(name: str, phone: str) -> str:
    """An audit target naming a person with masked data (bounded, whatever was submitted)."""
    return f"{mask_name(name[:20])} {mask_phone(phone[:20])}"


@contextmanager
def failures_audited(action: str, *, actor: str, target: str, org_id: int | None) -> Iterator[None]:
    """Record a refused ``action`` with the error's code as its result, then re-raise."""
    try:
        yield
    except IdpError as error:
        audit.record(action, actor=actor, target=target, result=error.code, org_id=org_id)
        raise


def check_real_name(*, name: str, phone: str, asker: Asker) -> None:
    """手机二要素校验, within the limits of ``realname_limits``. MISMATCH →
    ``RealNameMismatchError``; no verdict → the verifier's ``RealNameUnavailableError`` (503),
    never a mismatch; over a limit → ``RealNameLimitedError`` (429) without asking the vendor."""
    try:
        verdict = limited_verdict(asker, name=name, phone=phone)
    except RealNameUnavailableError:
        metrics.count_realname("unavailable")
        raise
    metrics.count_realname("match" if verdict == Verdict.MATCH else "mismatch")
    if verdict != Verdict.MATCH:
        raise RealNameMismatchError()


@dataclass(frozen=True)
class Candidate:
    """A person about to become an operator of an org: their account and their membership
    there, when they have one (a deleted membership is made usable again)."""

    name: str
    phone: str
    account: Account | None
    membership: Membership | None


def candidate(session: Session, org: Organisation, *, name: str, phone: str) -> Candidate:
    """Refuse a person who already is an operator of ``org`` (active or disabled) or whose
    account carries another name."""
    account = find_account_by_phone(session, phone)
    membership = membership_of(session, org, account) if account is not None else None
    if membership is not None and membership.status == MembershipStatus.ACTIVE:
        raise OperatorExistsError()
    if membership is not None and membership.status == MembershipStatus.DISABLED:
        raise OperatorExistsError(_("该手机号已是本机构的停用操作员，请通过“修改”重新启用"))
    if account is not None and account.name != name:
        raise NameConflictError()
    return Candidate(name=name, phone=phone, account=account, membership=membership)


def membership_of(session: Session, org: Organisation, account: Account) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.account_id == account.id, Membership.org_id == org.id)
    )


def find_membership(session: Session, org: Organisation, membership_id: int) -> Membership:
    """This org's membership ``membership_id``; another org's is as unknown as a missing one."""
    if not 0 < membership_id <= ID_MAX:  # beyond it: cannot exist, and overflows SQLite
        raise OperatorNotFoundError()
    membership = session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.org_id == org.id)
    )
    if membership is None:
        raise OperatorNotFoundError()
    return membership


# --- list and 【查询】 ----------------------------------------------------------------------------


def list_operators(
    session: Session,
    org: Organisation,
    *,
    query: str = "",
    status: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> Page[OperatorView]:
    """The org's operators, newest first. ``query`` matches part of the name or the phone;
    ``status`` is active, disabled or deleted (None or "": every operator not deleted)."""
    query = query.strip()
    if len(query) > MAX_QUERY:
        raise OperatorError(_("查询条件不能超过 %(n)d 字", n=MAX_QUERY), field="q")
    stmt = _operators(org, status)
    if query:
        stmt = stmt.where(
            or_(
                Account.name.contains(query, autoescape=True),
                Account.phone.contains(query, autoescape=True),
            )
        )
    stmt = stmt.order_by(Membership.created_at.desc(), Membership.id.desc())
    rows, total = paginate(session, stmt, page=page, per_page=per_page)
    items = [OperatorView.of(membership, account) for membership, account in rows]
    return Page(items=items, page=page, per_page=per_page, total=total)


def _operators(org: Organisation, status: str | None) -> Select[Membership, Account]:
    stmt = (
        select(Membership, Account)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.org_id == org.id)
    )
    if not status:
        return stmt.where(Membership.status != MembershipStatus.DELETED)
    if status not in {s.value for s in MembershipStatus}:
        raise OperatorError(_("操作员状态无效"), field="status")
    return stmt.where(Membership.status == MembershipStatus(status))


def get_operator(session: Session, org: Organisation, membership_id: int) -> OperatorView:
    """【查询】: one operator of ``org`` (404 for another org's or an unknown id)."""
    membership = find_membership(session, org, membership_id)
    return OperatorView.of(membership, membership.account)


# --- 【增加】 -------------------------------------------------------------------------------------


def add_operator(
    session: Session, org: Organisation, *, name: str, phone: str, actor: str
) -> OperatorAdded:
    """【增加】: real-name check, then the account (must change its password at the first login)
    and its membership, with a random initial password by SMS.

    Nothing is saved when any step fails: a mismatch (400), no verdict (503), a phone that
    already is this org's operator (409), or a failed initial-password SMS (503; it goes out
    before the first write)."""
    target = person_target(str(name), str(phone))
    with failures_audited(ADDED, actor=actor, target=target, org_id=org.id):
        person = candidate(session, org, name=clean_name(name), phone=clean_phone(phone))
        check_real_name(name=person.name, phone=person.phone, asker=Asker(actor, org.id))
        return enrol(session, org, person, actor=actor)


def add_operator_for_platform(
    session: Session,
    org: Organisation,
    *,
    name: str,
    phone: str,
    password: str | None = None,
    actor: str = "cli",
) -> OperatorAdded:
    """``idp operators add``: the platform enrols a person it vouches for (no real-name check),
    with ``password`` as the initial password, or a random one sent by SMS without it. The
    first login forces a password change either way."""
    target = person_target(str(name), str(phone))
    with failures_audited(ADDED, actor=actor, target=target, org_id=org.id):
        person = candidate(session, org, name=clean_name(name), phone=checked_phone(phone))
        if password is not None and (
            errors := policy_errors(password, phone=person.phone, old_hash=None)
        ):
            raise OperatorError(joined(errors), field="password")
        return enrol(session, org, person, actor=actor, password=password)


def enrol(
    session: Session,
    org: Organisation,
    person: Candidate,
    *,
    actor: str,
    password: str | None = None,
) -> OperatorAdded:
    """Make ``phone`` an active operator of ``org`` once the checks have passed.

    The rows are written (flushed) first: of two admins adding the same new phone at once, the
    second waits on the first's row and is refused as "already exists" before any SMS. The
    initial password of a new account goes out next, in this transaction: if the gateway
    fails, the request is rolled back and nothing is kept. An existing account's notice is
    queued for after the commit. A generated password exists only in that SMS and as its hash."""
    account, phone = person.account, person.phone
    initial = generate_initial_password() if account is None and password is None else None
    try:
        if account is None:
            secret = password or initial or ""
            account = Account(phone=phone, name=person.name, password_hash=hash_password(secret))
            session.add(account)
            session.flush()
        membership = activate_membership(session, org, account, person.membership, created_by=actor)
    except IntegrityError as error:  # the same person added at the same instant
        raise OperatorExistsError() from error
    if initial is not None:
        send_initial_password(org, phone=phone, password=initial)
    elif person.account is not None:
        send_notice(org, phone=phone)
    audit.record(ADDED, actor=actor, target=person_target(person.name, phone), org_id=org.id)
    return OperatorAdded(
        operator=OperatorView.of(membership, account),
        initial_password_sent=initial is not None,
        account_id=account.id,
    )


def activate_membership(
    session: Session,
    org: Organisation,
    account: Account,
    membership: Membership | None,
    *,
    created_by: str,
) -> Membership:
    """A new active membership, or a deleted one made usable again."""
    if membership is None:
        membership = Membership(account_id=account.id, org_id=org.id, created_by=created_by)
        session.add(membership)
    else:
        membership.status = MembershipStatus.ACTIVE
        membership.deleted_at = None
        membership.updated_at = utcnow()
    session.flush()
    return membership


def send_initial_password(org: Organisation, *, phone: str, password: str) -> None:
    """初始密码以短信方式发送, in this request and before the account is saved: a failed SMS
    leaves nothing, and the admin sees the failure at once (the password exists only in this
    SMS, so an account whose SMS was lost would be unusable). Not queued, unlike other SMS:
    the admin is authenticated, so the wait reveals nothing, and it is bounded by the vendor
    client's timeout like the real-name check of the same request."""
    message = Delivery(phone=phone, purpose="initial_password", params={"password": password})
    sms_delivery.send_now(message)
    audit.record(INITIAL_PASSWORD_SENT, actor="system", target=mask_phone(phone), org_id=org.id)


def send_notice(org: Organisation, *, phone: str) -> None:
    """Tell a person who already has an account that it now also works for ``org``: queued
    once the change is committed (the membership does not depend on the notice; a failed
    delivery is an ``sms.delivery_failed`` event in the org's audit log)."""
    params = {"org_name": org.name}
    notice = Delivery(phone=phone, purpose="operator_added", params=params, org_id=org.id)
    sms_delivery.enqueue_after_commit(notice)
    audit.record(
        NOTICE_SENT, actor="system", target=mask_phone(phone), result="queued", org_id=org.id
    )


# --- 【修改】 -------------------------------------------------------------------------------------


def update_operator(
    session: Session,
    org: Organisation,
    membership_id: int,
    /,
    *,
    phone: str | None = None,
    status: str | None = None,
    actor: str,
    **unknown: object,
) -> OperatorView:
    """【修改】: only the phone (re-checked with the real-name check against the unchanged name)
    and the status (active/disabled). Any other field → ``ReadOnlyFieldError``, nothing changed.

    A new phone must be free and the account must not be another org's operator too (the phone
    is the person's login everywhere). A new phone is a new credential: every login session,
    code and token opened with the old one ends (``credentials_changed``), since the old number
    may be lost or passed on. Disabling ends the operator's login sessions (the principal check
    needs an active membership) and revokes their tokens for this org."""
    target = f"membership:{membership_id}"
    with failures_audited(UPDATED, actor=actor, target=target, org_id=org.id):
        if unknown:
            raise ReadOnlyFieldError()
        membership = find_membership(session, org, membership_id)
        account = membership.account
        target = f"membership:{membership.id} {person_target(account.name, account.phone)}"
    with failures_audited(UPDATED, actor=actor, target=target, org_id=org.id):
        if membership.status == MembershipStatus.DELETED:
            raise OperatorDeletedError()
        new_status = editable_status(status) if status is not None else membership.status
        new_phone = clean_phone(phone) if phone is not None else account.phone
        if new_phone != account.phone:
            check_phone_change(session, org, account=account, phone=new_phone)
            check_real_name(name=account.name, phone=new_phone, asker=Asker(actor, org.id))
    changes = apply_changes(session, org, membership, phone=new_phone, status=new_status)
    audit.record(UPDATED, actor=actor, target=target, org_id=org.id, details=changes)
    return OperatorView.of(membership, account)


def editable_status(status: str) -> MembershipStatus:
    if status not in {s.value for s in EDITABLE_STATUSES}:
        raise OperatorError(_("操作员状态只能为启用或停用"), field="status")
    return MembershipStatus(status)


def check_phone_change(
    session: Session, org: Organisation, *, account: Account, phone: str
) -> None:
    """The account keeps its identity and gets the new phone: only when no other org shares the
    account and no other account has that phone."""
    shared = session.scalar(
        select(Membership.id)
        .where(
            Membership.account_id == account.id,
            Membership.org_id != org.id,
            Membership.status != MembershipStatus.DELETED,
        )
        .limit(1)
    )
    if shared is not None:
        raise SharedAccountError()
    if find_account_by_phone(session, phone) is not None:
        raise PhoneTakenError()


def apply_changes(
    session: Session,
    org: Organisation,
    membership: Membership,
    *,
    phone: str,
    status: MembershipStatus,
) -> dict[str, str]:
    """Write the checked changes; what changed, masked, for the audit event."""
    account = membership.account
    changes = {}
    revoked: int | None = None  # None: nothing that ends tokens happened
    if phone != account.phone:
        changes["phone"] = f"{mask_phone(account.phone)} -> {mask_phone(phone)}"
        account.phone = phone
        _version, revoked = credentials_changed(session, account)
    if status != membership.status:
        changes["status"] = f"{membership.status.value} -> {status.value}"
        membership.status = status
        if status == MembershipStatus.DISABLED:
            revoked = (revoked or 0) + revoke_for_account(session, account.id, org_id=org.id)
    if revoked is not None:
        changes["tokens_revoked"] = str(revoked)
    if changes:
        membership.updated_at = utcnow()
    return changes


# --- 【删除】 -------------------------------------------------------------------------------------


def delete_operator(
    session: Session, org: Organisation, membership_id: int, *, actor: str
) -> OperatorView:
    """【删除】: "实际是将操作员账户置为不可使用". The membership is marked deleted (the row stays
    for the audit trail), the operator's tokens for this org are revoked at once, and their
    login sessions end (the principal check needs an active membership; so does the login)."""
    target = f"membership:{membership_id}"
    with failures_audited(DELETED, actor=actor, target=target, org_id=org.id):
        membership = find_membership(session, org, membership_id)
        account = membership.account
        target = f"membership:{membership.id} {person_target(account.name, account.phone)}"
    with failures_audited(DELETED, actor=actor, target=target, org_id=org.id):
        if membership.status == MembershipStatus.DELETED:
            raise OperatorDeletedError()
    now = utcnow()
    membership.status = MembershipStatus.DELETED
    membership.deleted_at = now
    membership.updated_at = now
    revoked = revoke_for_account(session, account.id, org_id=org.id)
    audit.record(
        DELETED, actor=actor, target=target, org_id=org.id, details={"tokens_revoked": str(revoked)}
    )
    return OperatorView.of(membership, account)
