"""Userinfo and introspection only read: on PostgreSQL their statements run outside a
transaction (one round trip each instead of ``BEGIN``, the statement and ``COMMIT``), and the
pooled connection goes back to the next request transactional. SQLite keeps its transactions,
which cost no round trip there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import both_databases
from tests.flows import token_request

pytestmark = both_databases


@pytest.fixture
def autocommitted(app) -> Iterator[list[tuple[str, bool]]]:
    """Each statement the provider sends: its first word, and whether it ran outside a
    transaction (the driver's own autocommit on PostgreSQL; SQLAlchemy's option on SQLite)."""
    engine = app.extensions["idp.engine"]
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            outside = bool(dbapi.autocommit)
        else:
            outside = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        seen.append((statement.split()[0], outside))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_userinfo_and_introspection_read_outside_a_transaction_on_postgresql(
    client, rp, issue_tokens, autocommitted, db_url
):
    tokens = issue_tokens()
    autocommitted.clear()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).json["sub"]
    introspected = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=rp.auth
    )
    assert introspected.json["active"] is True
    assert autocommitted, "the requests read nothing"
    assert {word for word, _ in autocommitted} == {"SELECT"}
    on_postgresql = db_url.startswith("postgresql")
    assert all(outside == on_postgresql for _, outside in autocommitted), autocommitted


def test_the_next_request_writes_in_a_transaction_again(client, rp, issue_tokens, autocommitted):
    tokens = issue_tokens()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200
    autocommitted.clear()
    refreshed = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=rp.auth,
    )
    assert refreshed.status_code == 200, refreshed.text
    writes = [outside for word, outside in autocommitted if word in {"INSERT", "UPDATE"}]
    assert writes and not any(writes), autocommitted
    # The rotated token is spent and its successor live: the writes were committed together.
    again = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": refreshed.json["refresh_token"]},
        auth=rp.auth,
    )
    assert again.status_code == 200, again.text
