"""The statements of token and resource requests go to the driver directly
(``idp.db.DirectStatement``), standing alone (PostgreSQL) or in the session's transaction
(SQLite): they must read and write exactly what the same statements through SQLAlchemy do, fail
with SQLAlchemy's errors (nothing written), and leave a lost connection to be replaced."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from flask import Flask
from sqlalchemy import bindparam, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from idp import db
from idp.oidc import client_cache, presented, tokens
from idp.oidc.models import digest
from tests.conftest import both_databases


@contextlib.contextmanager
def standing_alone(app: Flask) -> Iterator[Session]:
    """A request's session whose statements stand alone (on PostgreSQL)."""
    with app.test_request_context():
        db.statements_stand_alone()
        yield db.session()


@pytest.fixture
def alone(app: Flask) -> Iterator[Session]:
    with standing_alone(app) as session:
        yield session


def token_row(client_id: str, value: str) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return dict(
        client_id=client_id,
        account_id=None,
        identity=None,
        access_token_hash=digest(value),
        refresh_token_hash=None,
        scope="org.operators",
        family_id="f" * 32,
        code_id=None,
        sid=None,
        auth_time=now - timedelta(minutes=1),
        amr=["pwd", "sms"],
        acr=None,
        claims={"userinfo": {"name": None}},
        credential_version=0,
        issued_at=now,
        access_expires_at=now + timedelta(hours=1),
        refresh_expires_at=None,
        family_expires_at=None,
    )


@both_databases
def test_a_presented_token_reads_the_same_either_way(app, rp, issue_tokens):
    issued = issue_tokens()
    statement = presented._PRESENTED_BY["access_token"]
    params = {"digest": digest(issued["access_token"])}
    with standing_alone(app) as session:
        through_sqlalchemy = db.run(session, statement, params).first()

        row = db.first(session, statement, params)

        assert isinstance(row, db.DirectRow)
        assert tuple(row) == tuple(through_sqlalchemy)
        assert row.client_id == through_sqlalchemy.client_id == rp.client_id
        expires = row[tuple(through_sqlalchemy._mapping).index("access_expires_at")]
        assert expires.tzinfo is not None and expires.utcoffset() == timedelta(0)
        assert db.first(session, statement, {"digest": digest("unknown")}) is None


@both_databases
def test_a_clients_row_reads_the_same_either_way(rp, alone):
    params = {"client_id": rp.client_id}
    through_sqlalchemy = db.run(alone, client_cache._ROW_BY_ID, params).first()

    row = db.first(alone, client_cache._ROW_BY_ID, params)

    assert isinstance(row, db.DirectRow)
    assert dict(row._mapping) == dict(through_sqlalchemy._mapping)
    assert (
        row.client_metadata["redirect_uris"] == through_sqlalchemy.client_metadata["redirect_uris"]
    )
    with pytest.raises(AttributeError):
        _ = row.no_such_column


@both_databases
def test_a_written_row_holds_the_values_given(rp, alone):
    row = token_row(rp.client_id, "written")

    assert db.write(alone, tokens._INSERT_TOKEN, row) == 1

    stored = db.run(
        alone,
        select(tokens._tokens).where(
            tokens._tokens.c.access_token_hash == row["access_token_hash"]
        ),
    ).one()
    for name, value in row.items():
        assert getattr(stored, name) == value, name


@both_databases
def test_the_engines_cursor_events_see_a_statement_sent_directly(app, rp):
    """Listeners of the engine's cursor events (the benchmarks' statement count, a tracer) see
    the statement as SQLAlchemy would show it (the events are looked up only when some are
    listened for)."""
    row = token_row(rp.client_id, "seen")
    with standing_alone(app) as session:
        connection = db.connection_of(session)
        seen: list[tuple[str, str]] = []

        def before(_conn, _cursor, statement, *_args):
            seen.append(("before", statement))

        def after(_conn, _cursor, statement, *_args):
            seen.append(("after", statement))

        engine = connection.engine
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        try:
            assert db.write(session, tokens._INSERT_TOKEN, row) == 1
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)

    assert [when for when, _sql in seen] == ["before", "after"]
    assert seen[0][1].startswith("INSERT INTO token (")


@both_databases
def test_a_refused_write_raises_sqlalchemys_error_and_writes_nothing(rp, alone):
    row = token_row(rp.client_id, "twice")
    assert db.write(alone, tokens._INSERT_TOKEN, row) == 1

    with pytest.raises(IntegrityError):
        db.write(alone, tokens._INSERT_TOKEN, {**row, "family_id": "g" * 32})

    count = select(func.count()).where(
        tokens._tokens.c.access_token_hash == row["access_token_hash"]
    )
    assert db.run(alone, count).scalar() == 1
    families = db.run(alone, select(tokens._tokens.c.family_id)).scalars().all()
    assert "g" * 32 not in families


@both_databases
def test_a_statement_that_needs_sqlalchemy_runs_through_it(rp, alone):
    # expanding parameters are SQLAlchemy's to render
    clients = client_cache._clients
    listed = select(clients.c.client_id).where(
        clients.c.client_id.in_(bindparam("ids", expanding=True))
    )
    params = {"ids": [rp.client_id, "another"]}
    assert db.DirectStatement.of(listed, db.connection_of(alone).dialect, params) is None

    assert tuple(db.first(alone, listed, params)) == (rp.client_id,)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # where statements stand alone
def test_a_lost_connection_is_reported_and_replaced(app, rp, db_url):
    params = {"client_id": rp.client_id}
    with standing_alone(app) as session:
        connection = db.connection_of(session)
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

        with pytest.raises(OperationalError) as lost:
            db.first(session, client_cache._ROW_BY_ID, params)

        assert lost.value.connection_invalidated
        assert connection.invalidated
    with standing_alone(app) as session:
        assert db.first(session, client_cache._ROW_BY_ID, params).client_id == rp.client_id


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # psycopg's cursors are kept
def test_a_connection_keeps_one_cursor_and_a_refused_statement_costs_only_it(app, rp, db_url):
    params = {"client_id": rp.client_id}
    row = token_row(rp.client_id, "kept")
    with standing_alone(app) as session:
        pooled = db.connection_of(session).connection
        client = db.first(session, client_cache._ROW_BY_ID, params)
        kept = pooled.info[db.KEPT_CURSOR]
        assert db.write(session, tokens._INSERT_TOKEN, row) == 1
        assert pooled.info[db.KEPT_CURSOR] is kept

        with pytest.raises(IntegrityError):
            db.write(session, tokens._INSERT_TOKEN, row)

        assert tuple(db.first(session, client_cache._ROW_BY_ID, params)) == tuple(client)
        assert pooled.info[db.KEPT_CURSOR] is not kept  # the refused one's was closed
    with standing_alone(app) as session:  # the next request, on the connection from the pool
        assert db.first(session, client_cache._ROW_BY_ID, params).client_id == rp.client_id
