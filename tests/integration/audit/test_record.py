"""Audit events survive a rollback of their transaction, and are never written twice."""

from __future__ import annotations

from sqlalchemy import func, select

from idp import audit, db, web
from idp.audit.models import AuditEvent


def actions() -> list[str]:
    return list(db.session().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_a_rolled_back_event_is_written_again(app):
    audit.record("test.refused", actor="cli", result="refused")

    web.rollback()
    db.session().commit()

    assert actions() == ["test.refused"]


def test_an_event_committed_before_the_rollback_is_not_written_twice(app):
    audit.record("test.first", actor="cli")
    db.session().commit()  # e.g. a request that commits before its last step
    audit.record("test.second", actor="cli", result="refused")

    web.rollback()
    db.session().commit()

    assert actions() == ["test.first", "test.second"]
    assert db.session().scalar(select(func.count()).select_from(AuditEvent)) == 2
