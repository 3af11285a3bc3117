"""用户审核 (docs/design.md journey 3): staff ask to become operators of an organisation; its admin
approves (the operator account is created as by 【增加】) or rejects with a reason (told by SMS).

Applicants prove their phone with an SMS code (checked by the public ``/join`` view) and pass
the real-name check when they apply, so approval needs no second check. Requests expire after
``IDP_JOIN_REQUEST_TTL``; a pending request past its time is marked expired whenever the org's
requests are listed or acted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from idp import audit
from idp.auth import sms_codes, sms_delivery
from idp.auth.client import Client
from idp.auth.sms_delivery import Delivery
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError, NotFoundError
from idp.identity.lookup import find_account_by_phone, find_org
from idp.identity.models import (
    ID_MAX,
    JoinRequest,
    JoinRequestStatus,
    Membership,
    MembershipStatus,
    Organisation,
)
from idp.identity.uscc import is_valid_uscc
from idp.orgs import operators
from idp.orgs.operators import (
    OperatorAdded,
    OperatorError,
    failures_audited,
    person_target,
)
from idp.orgs.realname_limits import Asker
from idp.pagination import Page, paginate
from idp.security import mask_phone

JOIN_PURPOSE = "join"  # the SMS code purpose of the /join page
CODE_REQUESTED = "orgs.join_code_requested"
REQUESTED = "orgs.join_requested"
APPROVED = "orgs.join_approved"
REJECTED = "orgs.join_rejected"
EXPIRED = "orgs.join_expired"
MAX_REASON = 200

STATUS_LABELS = {
    JoinRequestStatus.PENDING: _l("待审核"),
    JoinRequestStatus.APPROVED: _l("已通过"),
    JoinRequestStatus.REJECTED: _l("已驳回"),
    JoinRequestStatus.EXPIRED: _l("已过期"),
}


class JoinRequestError(OperatorError):
    code = "invalid_join_request"


class OrgNotRegisteredError(JoinRequestError):
    """Says only that no organisation has this USCC (public register data anyway)."""

    code = "org_not_registered"
    status = 404
    message = _l("该统一社会信用代码未注册")
    field = "uscc"


class OrgSuspendedJoinError(JoinRequestError):
    """Nobody of a suspended organisation can review a request: none is accepted meanwhile."""

    code = "org_suspended_join"
    status = 403
    message = _l("该机构已被平台暂停使用，暂不接受加入申请")
    field = "uscc"


class AlreadyOperatorError(JoinRequestError):
    code = "already_operator"
    status = 409
    message = _l("您已是该机构的操作员，请直接登录")


class DuplicateJoinRequestError(JoinRequestError):
    code = "join_request_pending"
    status = 409
    message = _l("您已提交过申请，请等待企业管理员审核")


class JoinRequestDecidedError(JoinRequestError):
    code = "join_request_decided"
    status = 409
    message = _l("该申请已处理，不能重复操作")


class JoinRequestExpiredError(JoinRequestError):
    code = "join_request_expired"
    status = 409
    message = _l("该申请已过期")


class JoinRequestNotFoundError(NotFoundError):
    code = "join_request_not_found"
    message = _l("申请不存在")


@dataclass(frozen=True)
class JoinRequestView:
    """A join request as the console and the API show it."""

    id: int
    name: str
    phone: str
    status: str
    reason: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str

    @classmethod
    def of(cls, row: JoinRequest) -> JoinRequestView:
        return cls(
            id=row.id,
            name=row.name,
            phone=row.phone,
            status=row.status.value,
            reason=row.reason,
            created_at=row.created_at,
            expires_at=row.expires_at,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
        )

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[JoinRequestStatus(self.status)])


# --- the applicant ------------------------------------------------------------------------------


def request_join_code(*, phone: str, client: Client) -> None:
    """Send the /join page's SMS code (the limits of login codes, counted together with them:
    per phone and client, per network, per phone and in total)."""
    sms_codes.send_code(phone, purpose=JOIN_PURPOSE, client=client, only_to_account=False)
    audit.record(CODE_REQUESTED, actor=mask_phone(phone))


def submit_join_request(session: Session, *, uscc: str, name: str, phone: str) -> JoinRequestView:
    """A pending request to join the org of ``uscc``; the caller has checked the SMS code.

    Refused, with nothing saved: an unknown USCC, a suspended organisation, a person already an operator there, a pending
    request of the same phone for the same org, a real-name mismatch (400) or no verdict (503)."""
    actor = mask_phone(str(phone)[:20])
    target = person_target(str(name), str(phone))
    org = None
    try:
        name, phone = operators.clean_name(name), operators.clean_phone(phone)
        uscc = check_uscc(uscc)
        org = find_org(session, uscc)
        if org is None:
            raise OrgNotRegisteredError()
        if org.suspended_at is not None:
            raise OrgSuspendedJoinError()
        expire_stale(session, org, phone=phone)
        check_applicant(session, org, name=name, phone=phone)
        operators.check_real_name(name=name, phone=phone, asker=Asker(actor, org.id))
    except IdpError as error:
        org_id = org.id if org is not None else None
        audit.record(REQUESTED, actor=actor, target=target, result=error.code, org_id=org_id)
        raise
    ttl = timedelta(seconds=settings().join_request_ttl)
    row = JoinRequest(org_id=org.id, name=name, phone=phone, expires_at=utcnow() + ttl)
    session.add(row)
    session.flush()
    audit.record(REQUESTED, actor=actor, target=f"join_request:{row.id} {target}", org_id=org.id)
    return JoinRequestView.of(row)


def check_uscc(uscc: str) -> str:
    """The USCC in upper case, with a valid GB 32100 check character."""
    uscc = uscc.strip().upper() if isinstance(uscc, str) else ""
    if not is_valid_uscc(uscc):
        raise JoinRequestError(_("统一社会信用代码无效"), field="uscc")
    return uscc


def check_applicant(session: Session, org: Organisation, *, name: str, phone: str) -> None:
    """Not already an operator of ``org``, no pending request there, and, for a person who has
    an account, the name it was opened with."""
    account = find_account_by_phone(session, phone)
    if account is not None:
        status = session.scalar(
            select(Membership.status).where(
                Membership.account_id == account.id, Membership.org_id == org.id
            )
        )
        if status == MembershipStatus.ACTIVE:
            raise AlreadyOperatorError()
        if status == MembershipStatus.DISABLED:
            raise AlreadyOperatorError(_("您在该机构的账户已停用，请联系企业管理员"))
        if account.name != name:
            raise operators.NameConflictError()
    pending = session.scalar(
        select(JoinRequest.id)
        .where(
            JoinRequest.org_id == org.id,
            JoinRequest.phone == phone,
            JoinRequest.status == JoinRequestStatus.PENDING,
        )
        .limit(1)
    )
    if pending is not None:
        raise DuplicateJoinRequestError()


# --- the org admin ------------------------------------------------------------------------------


def list_join_requests(
    session: Session,
    org: Organisation,
    *,
    status: str | None = JoinRequestStatus.PENDING.value,
    page: int = 1,
    per_page: int = 20,
) -> Page[JoinRequestView]:
    """The org's requests, newest first; ``status`` pending (default), approved, rejected,
    expired, or None/"" for all. Requests past their time are marked expired first."""
    stmt: Select[Any] = select(JoinRequest).where(JoinRequest.org_id == org.id)
    if status:
        if status not in {s.value for s in JoinRequestStatus}:
            raise JoinRequestError(_("申请状态无效"), field="status")
        stmt = stmt.where(JoinRequest.status == JoinRequestStatus(status))
    expire_stale(session, org)
    stmt = stmt.order_by(JoinRequest.created_at.desc(), JoinRequest.id.desc())
    rows, total = paginate(session, stmt, page=page, per_page=per_page)
    items = [JoinRequestView.of(row) for (row,) in rows]
    return Page(items=items, page=page, per_page=per_page, total=total)


def get_join_request(session: Session, org: Organisation, request_id: int) -> JoinRequestView:
    """One request of ``org`` (404 for another org's or an unknown id), shown expired once past
    its time."""
    if not 0 < request_id <= ID_MAX:
        raise JoinRequestNotFoundError()
    row = session.scalar(
        select(JoinRequest).where(JoinRequest.id == request_id, JoinRequest.org_id == org.id)
    )
    if row is None:
        raise JoinRequestNotFoundError()
    expire_stale(session, org, phone=row.phone)
    return JoinRequestView.of(row)


def approve(session: Session, org: Organisation, request_id: int, *, actor: str) -> OperatorAdded:
    """通过: the applicant becomes an active operator, as by 【增加】 (initial password by SMS;
    the real-name check passed when they applied). 404 for another org's request, 409 for a
    decided or expired one; nothing changes when the initial-password SMS fails."""
    row = find_request(session, org, request_id, action=APPROVED, actor=actor)
    target = f"join_request:{row.id} {person_target(row.name, row.phone)}"
    with failures_audited(APPROVED, actor=actor, target=target, org_id=org.id):
        check_pending(row)
        person = operators.candidate(session, org, name=row.name, phone=row.phone)
        added = operators.enrol(session, org, person, actor=actor)
    decide(row, JoinRequestStatus.APPROVED, actor=actor)
    audit.record(APPROVED, actor=actor, target=target, org_id=org.id)
    return added


def reject(
    session: Session, org: Organisation, request_id: int, *, reason: str, actor: str
) -> JoinRequestView:
    """驳回: the request is closed with ``reason`` (required, at most 200 characters), which the
    applicant receives by SMS (queued once the decision is committed). 404 for another org's
    request, 409 for a decided or expired one."""
    row = find_request(session, org, request_id, action=REJECTED, actor=actor)
    target = f"join_request:{row.id} {person_target(row.name, row.phone)}"
    with failures_audited(REJECTED, actor=actor, target=target, org_id=org.id):
        reason = clean_reason(reason)
        check_pending(row)
        send_rejection(org, phone=row.phone, reason=reason)
    row.reason = reason
    decide(row, JoinRequestStatus.REJECTED, actor=actor)
    audit.record(REJECTED, actor=actor, target=target, org_id=org.id)
    return JoinRequestView.of(row)


def clean_reason(reason: str) -> str:
    """One line of at most 200 characters (it goes into an SMS)."""
    reason = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not reason:
        raise JoinRequestError(_("请填写驳回原因"), field="reason")
    if len(reason) > MAX_REASON:
        raise JoinRequestError(_("驳回原因不能超过 %(n)d 字", n=MAX_REASON), field="reason")
    return reason


def find_request(
    session: Session, org: Organisation, request_id: int, *, action: str, actor: str
) -> JoinRequest:
    """This org's request ``request_id``; another org's is as unknown as a missing one."""
    row = (
        session.scalar(
            select(JoinRequest).where(JoinRequest.id == request_id, JoinRequest.org_id == org.id)
        )
        if 0 < request_id <= ID_MAX
        else None
    )
    if row is None:
        error = JoinRequestNotFoundError()
        target = f"join_request:{request_id}"
        audit.record(action, actor=actor, target=target, result=error.code, org_id=org.id)
        raise error
    return row


def check_pending(row: JoinRequest) -> None:
    """Only a pending request within its time can be decided. (One past its time is marked
    expired by the next listing; marking it here would be undone with the refusal.)"""
    expired = row.status == JoinRequestStatus.PENDING and row.expires_at <= utcnow()
    if expired or row.status == JoinRequestStatus.EXPIRED:
        raise JoinRequestExpiredError()
    if row.status != JoinRequestStatus.PENDING:
        raise JoinRequestDecidedError()


def decide(row: JoinRequest, status: JoinRequestStatus, *, actor: str) -> None:
    row.status = status
    row.decided_at = utcnow()
    row.decided_by = actor


def send_rejection(org: Organisation, *, phone: str, reason: str) -> None:
    """Queued once the rejection is committed: the decision stands whether or not the SMS
    arrives, and a failed delivery is an ``sms.delivery_failed`` event in the org's log."""
    params = {"org_name": org.name, "reason": reason}
    rejection = Delivery(phone=phone, purpose="join_rejected", params=params, org_id=org.id)
    sms_delivery.enqueue_after_commit(rejection)


def expire_stale(session: Session, org: Organisation, *, phone: str | None = None) -> int:
    """Mark the org's pending requests past their time as expired (only ``phone``'s if given)."""
    stmt = select(JoinRequest).where(
        JoinRequest.org_id == org.id,
        JoinRequest.status == JoinRequestStatus.PENDING,
        JoinRequest.expires_at <= utcnow(),
    )
    if phone is not None:
        stmt = stmt.where(JoinRequest.phone == phone)
    return mark_expired(session, list(session.scalars(stmt)))


def mark_expired(session: Session, rows: list[JoinRequest]) -> int:
    for row in rows:
        decide(row, JoinRequestStatus.EXPIRED, actor="system")
        target = f"join_request:{row.id} {person_target(row.name, row.phone)}"
        audit.record(EXPIRED, actor="system", target=target, org_id=row.org_id)
    if rows:
        session.flush()  # no autoflush: the queries that follow must see the new status
    return len(rows)
