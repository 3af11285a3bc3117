"""Requests whose statements each stand alone run them outside a transaction on PostgreSQL
(one round trip each instead of ``BEGIN``, the statement and ``COMMIT``): userinfo and
introspection, which only read; a code redemption and a refresh, whose claim is committed at
once (the code's with its audit event) and reads the operator's standing, and whose issuance
(the anchor taken, the family, the token, the presented token retired) is one statement; a
client's own token, which is one INSERT. The pooled connection goes back to the next request
transactional. SQLite, where a transaction costs no round trip, keeps its transactions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from idp import db
from idp.audit.models import AuditEvent
from tests.conftest import both_databases, register
from tests.flows import Pkce, token_request
from tests.integration.oidc.helpers import audit_count, mint_code, redeem

pytestmark = both_databases


@pytest.fixture
def statements(app) -> Iterator[list[tuple[str, bool]]]:
    """Each statement the provider sends: its first word, and whether it ran outside a
    transaction (the driver's own autocommit on PostgreSQL; SQLAlchemy's option on SQLite)."""
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.dialect.name == "postgresql":
            outside = bool(conn.connection.dbapi_connection.autocommit)
        else:
            outside = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        seen.append((statement.split()[0], outside))

    for engine in db.engines(app):
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in db.engines(app):
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def on_postgresql(db_url: str) -> bool:
    return db_url.startswith("postgresql")


def assert_claim_and_issuance(
    statements: list[tuple[str, bool]], on_postgresql: bool, sqlite_writes: list[str]
) -> None:
    """On PostgreSQL two statements outside a transaction (claim, issuance); on SQLite the
    writes ``sqlite_writes`` (reads aside), all inside transactions."""
    words = [word for word, _ in statements]
    if on_postgresql:
        assert words == ["WITH", "WITH"]
        assert all(outside for _, outside in statements), statements
    else:
        assert [word for word in words if word != "SELECT"] == sqlite_writes
        assert not any(outside for _, outside in statements), statements


def test_userinfo_and_introspection_read_outside_a_transaction(
    client, rp, issue_tokens, statements, on_postgresql
):
    tokens = issue_tokens()
    statements.clear()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).json["sub"]
    introspected = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=rp.auth
    )
    assert introspected.json["active"] is True
    # each reads its token; the client is kept from the token request (oidc.client_cache)
    assert [word for word, _ in statements] == ["SELECT", "SELECT"]
    assert all(outside == on_postgresql for _, outside in statements), statements


def test_a_refresh_claims_and_issues_in_one_statement_each(
    client, rp, issue_tokens, statements, on_postgresql
):
    tokens = issue_tokens()
    statements.clear()
    refreshed = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=rp.auth,
    )
    assert refreshed.status_code == 200, refreshed.text
    # PostgreSQL: the claim with the account's standing, then family, successor and retirement
    assert_claim_and_issuance(statements, on_postgresql, ["UPDATE", "UPDATE", "INSERT", "UPDATE"])
    # The successor was stored, and the presented token retired with the rotation.
    again = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": refreshed.json["refresh_token"]},
        auth=rp.auth,
    )
    assert again.status_code == 200, again.text
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401


def test_a_clients_own_token_is_one_insert_on_its_own(client, app, statements, on_postgresql):
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    statements.clear()
    issued = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=backend.auth
    )
    assert issued.status_code == 200, issued.text
    assert [word for word, _ in statements] == ["SELECT", "INSERT"]
    assert all(outside == on_postgresql for _, outside in statements), statements


def test_a_code_redemption_claims_and_issues_in_one_statement_each(
    client, rp, issue_tokens, statements, on_postgresql
):
    assert issue_tokens()["access_token"]  # the client's row is kept from now on
    pkce = Pkce.new()
    code = mint_code(client, rp, pkce)
    statements.clear()
    redeemed = redeem(client, rp, code, pkce.verifier)
    assert redeemed.status_code == 200, redeemed.text
    # PostgreSQL: the claim with its audit event and the account's standing, then code, family
    # and token
    sqlite_writes = ["UPDATE", "INSERT", "UPDATE", "INSERT", "INSERT"]
    assert_claim_and_issuance(statements, on_postgresql, sqlite_writes)
    assert audit_count("oidc.code_redeemed") == 2
    bearer = {"Authorization": f"Bearer {redeemed.json['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200


def test_the_next_request_writes_in_a_transaction_again(client, rp, issue_tokens, statements):
    tokens = issue_tokens()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200
    statements.clear()
    logged_out = client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=rp.auth)
    assert logged_out.status_code == 200
    writes = [outside for word, outside in statements if word in {"INSERT", "UPDATE"}]
    assert writes and not any(writes), statements


def test_every_connection_goes_back_to_its_pool_after_each_request(client, app, rp, issue_tokens):
    """Whatever a request did (statements standing alone, ORM work in a transaction, a refusal,
    nothing at all), its session lets go of every connection by the time it is answered."""
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    tokens = issue_tokens()  # a login's ORM work and a code redemption
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    requests = [
        lambda: client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=backend.auth
        ),
        lambda: client.get("/oauth/userinfo", headers=bearer),
        lambda: client.get("/oauth/userinfo", headers={"Authorization": "Bearer wrong"}),
        lambda: client.post("/oauth/introspect", data={"token": "wrong"}, auth=rp.auth),
        lambda: client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=rp.auth),
        lambda: client.get("/healthz"),
    ]
    for send in requests:
        answered = send()
        assert answered.status_code in {200, 401}, answered.text
        assert checked_out(app) == 0


def test_a_request_ended_in_its_transaction_writes_nothing_and_lets_go(app):
    """A request that ends with its transaction open (an error before the commit) leaves
    nothing written and no connection out."""
    before = audit_count("test.unfinished")
    with app.test_request_context():
        db.session().add(AuditEvent(actor="test", action="test.unfinished", result="success"))
        db.session().flush()
        assert checked_out(app) == 1
    assert checked_out(app) == 0
    assert audit_count("test.unfinished") == before


def checked_out(app) -> int:
    return sum(engine.pool.checkedout() for engine in db.engines(app))
