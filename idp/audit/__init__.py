"""Audit trail: every security-relevant action writes an event (who, what, when, where, result).

Events survive a failed request: the error handler rolls the request back and then re-adds the
events recorded during it, so a refused login is still on record.
"""

from __future__ import annotations

from flask import Flask, has_request_context
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from idp import db, logs, metrics
from idp.audit.models import AuditEvent
from idp.security import client_ip

__all__ = ["AuditEvent", "init_app", "record"]

UNCOMMITTED = "audit_events"  # Session.info key: events recorded since the last commit
REPLAYED = ("time", "action", "actor", "target", "result", "org_id", "ip", "request_id", "details")


@orm_event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    session.info.pop(UNCOMMITTED, None)


def record(
    action: str,
    *,
    actor: str,
    target: str = "",
    result: str = "success",
    org_id: int | None = None,
    details: dict[str, str] | None = None,
) -> AuditEvent:
    """Write an audit event in the current transaction (kept even if the request fails).

    Personal data in ``actor``/``target`` must already be masked by the caller."""
    event = AuditEvent(
        action=action,
        actor=actor,
        target=target,
        result=result,
        org_id=org_id,
        ip=client_ip() if has_request_context() else "cli",
        request_id=logs.request_id(),
        details=details or {},
    )
    session = db.session()
    session.add(event)
    session.info.setdefault(UNCOMMITTED, []).append(event)
    metrics.count_audit_event(action, result)
    return event


def replay_after_rollback() -> None:
    """Re-add the events that a rollback of the session discarded (those not yet committed)."""
    session = db.session()
    for event in session.info.pop(UNCOMMITTED, []):
        session.add(AuditEvent(**{name: getattr(event, name) for name in REPLAYED}))


def init_app(app: Flask) -> None:
    """Nothing to configure; kept for the uniform ``init_app`` wiring."""
