"""Audit trail: every security-relevant action writes an event (who, what, when, where, result).

Events survive a failed request: the error handler rolls the request back and then re-adds the
events recorded during it, so a refused login is still on record.
"""

from __future__ import annotations

from flask import Flask, g, has_request_context

from idp import db
from idp.audit.models import AuditEvent
from idp.security import client_ip

__all__ = ["AuditEvent", "init_app", "record"]


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
        details=details or {},
    )
    db.session().add(event)
    if has_request_context():
        g.setdefault("audit_events", []).append(event)
    return event


def replay_after_rollback() -> None:
    """Re-add this request's events after a rollback discarded them."""
    for event in g.pop("audit_events", []):
        db.session().add(
            AuditEvent(
                time=event.time,
                action=event.action,
                actor=event.actor,
                target=event.target,
                result=event.result,
                org_id=event.org_id,
                ip=event.ip,
                details=event.details,
            )
        )


def init_app(app: Flask) -> None:
    """Nothing to configure; kept for the uniform ``init_app`` wiring."""
