"""Reading the audit trail: what an org admin may see of their organisation's events."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.audit.models import AuditEvent
from idp.pagination import Page, paginate


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

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventView:
        return cls(**{field.name: getattr(event, field.name) for field in fields(cls)})


def list_org_events(
    session: Session, org_id: int, *, page: int = 1, per_page: int = 20
) -> Page[AuditEventView]:
    """The org's audit events, newest first."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id)
        .order_by(AuditEvent.time.desc(), AuditEvent.id.desc())
    )
    rows, total = paginate(session, stmt, page=page, per_page=per_page)
    items = [AuditEventView.of(event) for (event,) in rows]
    return Page(items=items, page=page, per_page=per_page, total=total)


def count_outcomes(
    session: Session, actions: tuple[str, ...], *, since: datetime
) -> dict[str, dict[str, int]]:
    """How many events of each of ``actions`` since ``since``, by result (operators' metrics)."""
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.result, func.count())
        .where(AuditEvent.action.in_(actions), AuditEvent.time >= since)
        .group_by(AuditEvent.action, AuditEvent.result)
    )
    counts: dict[str, dict[str, int]] = {action: {} for action in actions}
    for action, result, count in rows:
        counts[action][result] = int(count)
    return counts


@dataclass(frozen=True)
class EventFilter:
    """What the platform console's audit view narrows the trail to (empty: no narrowing)."""

    action: str = ""
    actor: str = ""  # contained in the actor, any case
    target: str = ""  # contained in the target, any case
    result: str = ""  # "success", or "failed" for every other result
    since: datetime | None = None
    until: datetime | None = None  # exclusive


def list_events(
    session: Session, where: EventFilter, *, page: int = 1, per_page: int = 20
) -> Page[AuditEventView]:
    """Every organisation's and the platform's audit events matching ``where``, newest first."""
    stmt = select(AuditEvent).order_by(AuditEvent.time.desc(), AuditEvent.id.desc())
    if where.action:
        stmt = stmt.where(AuditEvent.action == where.action)
    if where.actor:
        stmt = stmt.where(
            func.lower(AuditEvent.actor).contains(where.actor.lower(), autoescape=True)
        )
    if where.target:
        stmt = stmt.where(
            func.lower(AuditEvent.target).contains(where.target.lower(), autoescape=True)
        )
    if where.result == "success":
        stmt = stmt.where(AuditEvent.result == "success")
    elif where.result == "failed":
        stmt = stmt.where(AuditEvent.result != "success")
    if where.since is not None:
        stmt = stmt.where(AuditEvent.time >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEvent.time < where.until)
    rows, total = paginate(session, stmt, page=page, per_page=per_page)
    items = [AuditEventView.of(event) for (event,) in rows]
    return Page(items=items, page=page, per_page=per_page, total=total)


OPERATOR_SIGN_INS = ("auth.login_succeeded", "auth.login_failed")
ORG_ADMIN_SIGN_INS = ("auth.cert_login_succeeded",)


def recent_sign_ins(
    session: Session, *, account_id: int | None, org_id: int | None, limit: int = 10
) -> list[AuditEventView]:
    """A person's latest sign-ins, newest first: an operator's logins and the failed attempts
    that got as far as their account (a right SMS code), or the UKey logins of an
    organisation's admin."""
    stmt = select(AuditEvent).order_by(AuditEvent.time.desc(), AuditEvent.id.desc()).limit(limit)
    if account_id is not None:
        stmt = stmt.where(
            AuditEvent.action.in_(OPERATOR_SIGN_INS), AuditEvent.target == f"account:{account_id}"
        )
    else:
        stmt = stmt.where(AuditEvent.action.in_(ORG_ADMIN_SIGN_INS), AuditEvent.org_id == org_id)
    return [AuditEventView.of(event) for event in session.scalars(stmt)]
