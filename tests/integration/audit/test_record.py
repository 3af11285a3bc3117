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


def test_the_events_of_a_transaction_are_written_with_its_commit_in_order(app):
    audit.record("test.first", actor="cli", target="code:1")
    audit.record("test.second", actor="client:abc", result="refused", details={"why": "x"})
    assert actions() == []  # nothing before the commit

    db.session().commit()

    events = db.session().scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.target, e.result, e.details) for e in events] == [
        ("test.first", "cli", "code:1", "success", {}),
        ("test.second", "client:abc", "", "refused", {"why": "x"}),
    ]
    assert events[0].time <= events[1].time


def test_a_rolled_back_event_not_replayed_is_not_written(app):
    audit.record("test.discarded", actor="cli")

    db.session().rollback()
    audit.record("test.kept", actor="cli")
    db.session().commit()

    assert actions() == ["test.kept"]
