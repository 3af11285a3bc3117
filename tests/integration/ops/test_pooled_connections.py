"""Pooled PostgreSQL connections are tested before use (``idp.db.CheckedBeforeUse``): one the
server ended is replaced before a statement uses it, whether it was used a moment ago (checked
on its socket, without a round trip) or idle for long (pinged), and a healthy one used a moment
ago costs no ping."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from idp.db import CheckedBeforeUse, make_engine


@pytest.fixture(params=[False, True], ids=["sessions", "autocommit"])
def engine(postgres_database: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Both pools of a process: the sessions' and the one statements stand alone on."""
    made = make_engine(postgres_database, autocommit=request.param)
    yield made
    made.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each ping the pool sends, counted."""
    sent: list[int] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection):
        sent.append(1)
        return original(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return sent


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_backend_pid()")))


def terminate(postgres_database: str, pid: int) -> None:
    url = postgres_database.replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as admin:
        # With a timeout PostgreSQL returns once the backend has exited (and hung up), not
        # when the signal is sent: the test then sees what a later request would.
        ended = admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()
        assert ended == (True,)


def test_a_connection_used_moments_ago_is_reused_without_a_ping(engine, pings):
    first = backend_pid(engine)
    assert backend_pid(engine) == first
    assert pings == []


def test_an_ended_connection_used_moments_ago_is_replaced_without_an_error(
    engine, pings, postgres_database
):
    ended = backend_pid(engine)
    terminate(postgres_database, ended)

    assert backend_pid(engine) != ended  # the statement ran, on a new connection
    assert pings == []  # its socket said so


def test_a_long_idle_connection_is_pinged_and_replaced_when_ended(
    engine, pings, postgres_database, monkeypatch
):
    monkeypatch.setattr(CheckedBeforeUse, "PING_AFTER_IDLE", 0.0)
    healthy = backend_pid(engine)
    assert backend_pid(engine) == healthy
    assert len(pings) == 1

    terminate(postgres_database, healthy)
    assert backend_pid(engine) != healthy
    assert len(pings) == 2
