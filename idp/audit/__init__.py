"""Audit trail: every security-relevant action writes an event (who, what, when, where, result).

Events survive a failed request: the error handler rolls the request back and then re-adds the
events recorded during it, so a refused login is still on record.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context
from sqlalchemy import CTE, ColumnElement, bindparam, insert, select
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from idp import db, logs, metrics
from idp.audit.models import AuditEvent
from idp.security import client_ip

__all__ = ["AuditEvent", "init_app", "record"]

# Session.info keys: the events recorded since the last commit, and those a rollback set aside
# (written again only when the caller replays them).
PENDING = "audit_events"
ROLLED_BACK = "audit_events_rolled_back"
# Written with the commit as one plain INSERT of every pending row: the ORM's unit of work cost
# more than the INSERT itself (docs/performance.md).
_events = db.table_of(AuditEvent)
_INSERT_EVENTS = insert(_events)
# The columns ``event_values`` gives to ``recorded_with`` (the target comes from the row).
_GIVEN = ("time", "action", "actor", "result", "org_id", "ip", "request_id", "details")
PARAMETER_PREFIX = "audit_"


def _when_and_where() -> dict[str, Any]:
    """The columns every event takes from the moment and the request it is recorded in."""
    return {
        "time": db.utcnow(),
        "ip": client_ip() if has_request_context() else "cli",
        "request_id": logs.request_id(),
    }


def record(
    action: str,
    *,
    actor: str,
    target: str = "",
    result: str = "success",
    org_id: int | None = None,
    details: dict[str, str] | None = None,
) -> None:
    """Write an audit event with the current transaction (kept even if the request fails).

    Personal data in ``actor``/``target`` must already be masked by the caller."""
    event = {
        "action": action,
        "actor": actor,
        "target": target,
        "result": result,
        "org_id": org_id,
        "details": details or {},
        **_when_and_where(),
    }
    _keep_pending(db.session(), [event])
    metrics.count_audit_event(action, result)


def recorded_with(source: CTE, target: ColumnElement[str], name: str = "audited") -> CTE:
    """An event for each row of ``source``, a data-modifying CTE of the same statement, with
    its target computed from the row: a write and its event as one statement, committed or
    lost together (PostgreSQL). Its other columns are the parameters ``event_values`` gives."""
    given = [bindparam(PARAMETER_PREFIX + col, type_=_events.c[col].type) for col in _GIVEN]
    rows = select(*given, target).select_from(source)
    return insert(_events).from_select([*_GIVEN, "target"], rows).cte(name)


def event_values(
    action: str, *, actor: str, result: str = "success", org_id: int | None = None
) -> dict[str, Any]:
    """The parameters of a ``recorded_with`` event (as ``record`` takes them); ``counted``
    once the statement has written it."""
    event = {
        "action": action,
        "actor": actor,
        "result": result,
        "org_id": org_id,
        "details": {},
        **_when_and_where(),
    }
    return {PARAMETER_PREFIX + name: event[name] for name in _GIVEN}


def counted(values: dict[str, Any]) -> None:
    """Count an event that a ``recorded_with`` statement wrote (``record`` counts its own)."""
    metrics.count_audit_event(
        values[PARAMETER_PREFIX + "action"], values[PARAMETER_PREFIX + "result"]
    )


@orm_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    events: list[dict[str, Any]] = session.info.get(PENDING, [])
    if events:
        db.run(session, _INSERT_EVENTS, events)


@orm_event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    session.info.pop(PENDING, None)


@orm_event.listens_for(Session, "after_soft_rollback")
def _set_aside(session: Session, _previous: Any) -> None:
    if events := session.info.pop(PENDING, None):
        session.info.setdefault(ROLLED_BACK, []).extend(events)


def replay_after_rollback() -> None:
    """Record again the events that a rollback of the session discarded (those not yet
    committed)."""
    session = db.session()
    _keep_pending(session, session.info.pop(ROLLED_BACK, []))


def _keep_pending(session: Session, events: list[dict[str, Any]]) -> None:
    """Events for the session's commit to write, in a transaction begun now if need be: the
    commit writes them (a session with no transaction has nothing to commit), and a rollback,
    even before any statement, sets them aside."""
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(PENDING, []).extend(events)


def init_app(app: Flask) -> None:
    """Nothing to configure; kept for the uniform ``init_app`` wiring."""
