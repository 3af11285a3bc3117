"""Clients kept between requests (idp.oidc.client_cache): a client's row read once serves the
next requests without a statement, and every committed change of a client, made on this
instance or on another sharing the database and the store, holds at the next request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import event

from idp import create_app, db
from idp.oidc import client_cache, clients
from tests.conftest import IsolatedClient, RegisteredClient, both_databases, register
from tests.flows import token_request

OWN_TOKEN = {"grant_type": "client_credentials"}


@pytest.fixture(params=["sql", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "sql":
        return {}
    return {"store_backend": "redis", "redis_url": request.getfixturevalue("redis_url")}


@pytest.fixture
def backend(app: Flask) -> RegisteredClient:
    return register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})


@pytest.fixture
def other_instance(settings) -> Iterator[Flask]:
    """A second provider on the same database and store, with a memory of its own."""
    other = create_app(settings)
    other.config.update(TESTING=True)
    other.test_client_class = IsolatedClient
    yield other
    db.dispose(other)


@pytest.fixture
def selects(app: Flask) -> Iterator[list[str]]:
    """The SELECT statements of the client table this instance sends."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SELECT") and "FROM client" in statement:
            seen.append(statement)

    for engine in db.engines(app):
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in db.engines(app):
        event.remove(engine, "before_cursor_execute", record)


def refused(response: Any) -> bool:
    return (response.status_code, response.json["error"]) == (401, "invalid_client")


def in_instance(instance: Flask, change: Any) -> Any:
    """Make and commit a change of a client on ``instance``, as its console would."""
    with instance.app_context():
        result = change(db.session())
        db.session().commit()
        return result


def rotate_on(instance: Flask, backend: RegisteredClient) -> RegisteredClient:
    _client, secret = in_instance(
        instance, lambda session: clients.rotate_secret(session, backend.client_id)
    )
    return RegisteredClient(backend.client_id, secret)


# On the SQL store of the test's own database: in the Redis db that tests share, a test running
# alongside may renew the version at any moment (each of its client changes does).
ON_THE_SQL_STORE = pytest.mark.parametrize("settings_overrides", [{}])


@both_databases
@ON_THE_SQL_STORE
def test_a_client_read_once_serves_the_next_requests_without_a_statement(client, backend, selects):
    assert token_request(client, OWN_TOKEN, auth=backend.auth).status_code == 200
    assert len(selects) == 1  # the store had no version yet: named after this request
    assert token_request(client, OWN_TOKEN, auth=backend.auth).status_code == 200
    assert len(selects) == 2  # read under the version, and kept

    for _ in range(3):
        assert token_request(client, OWN_TOKEN, auth=backend.auth).status_code == 200

    assert len(selects) == 2


def test_a_rotated_secret_holds_at_the_next_request_on_every_instance(
    app, client, backend, other_instance
):
    other = other_instance.test_client()
    for instance in (client, other):
        assert token_request(instance, OWN_TOKEN, auth=backend.auth).status_code == 200

    new = rotate_on(other_instance, backend)

    for instance in (client, other):
        assert refused(token_request(instance, OWN_TOKEN, auth=backend.auth))
        assert token_request(instance, OWN_TOKEN, auth=new.auth).status_code == 200


def test_a_disabled_or_removed_client_is_unknown_at_the_next_request_on_every_instance(
    app, client, backend, other_instance
):
    other = other_instance.test_client()
    for instance in (client, other):
        assert token_request(instance, OWN_TOKEN, auth=backend.auth).status_code == 200

    in_instance(
        app,
        lambda session: clients.set_client_disabled(
            session, backend.client_id, True, actor="platform"
        ),
    )
    for instance in (client, other):
        assert refused(token_request(instance, OWN_TOKEN, auth=backend.auth))

    in_instance(
        other_instance,
        lambda session: clients.set_client_disabled(
            session, backend.client_id, False, actor="platform"
        ),
    )
    for instance in (client, other):
        assert token_request(instance, OWN_TOKEN, auth=backend.auth).status_code == 200

    in_instance(other_instance, lambda session: clients.remove_client(session, backend.client_id))
    for instance in (client, other):
        assert refused(token_request(instance, OWN_TOKEN, auth=backend.auth))


def test_a_changed_redirect_uri_holds_at_the_next_authorization_on_every_instance(
    app, client, rp, other_instance
):
    other = other_instance.test_client()
    query = urlencode(
        {
            "client_id": rp.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": "https://rp.example/callback",
        }
    )
    for instance in (client, other):
        assert instance.get(f"/authorize?{query}").status_code == 302  # to the login page

    in_instance(
        other_instance,
        lambda session: clients.update_client(
            session, rp.client_id, {"redirect_uris": ["https://rp.example/new-callback"]}
        ),
    )

    for instance in (client, other):
        page = instance.get(f"/authorize?{query}")
        assert page.status_code == 400
        assert "Location" not in page.headers  # never redirected to a URI no longer registered


@ON_THE_SQL_STORE
def test_a_row_whose_new_version_was_never_written_is_read_again_after_max_age(
    app, client, backend, monkeypatch
):
    for _ in range(2):  # the first names the clients' version, the second keeps the row
        assert token_request(client, OWN_TOKEN, auth=backend.auth).status_code == 200
    monkeypatch.setattr(client_cache, "new_version", lambda: None)  # the store failed then
    new = rotate_on(app, backend)
    assert token_request(client, OWN_TOKEN, auth=backend.auth).status_code == 200  # kept

    later = time.monotonic() + client_cache.MAX_AGE + 1
    monkeypatch.setattr(client_cache, "monotonic", lambda: later)

    assert refused(token_request(client, OWN_TOKEN, auth=backend.auth))
    assert token_request(client, OWN_TOKEN, auth=new.auth).status_code == 200


@pytest.mark.parametrize(
    "settings_overrides", [{"store_backend": "redis", "redis_url": "redis://127.0.0.1:1/0"}]
)
def test_without_the_store_every_request_reads_the_client_from_the_database(
    client, backend, selects
):
    """The version cannot be read, so no kept row can be trusted: the client's own token still
    needs only the database, as before rows were kept."""
    for _ in range(2):
        response = token_request(client, OWN_TOKEN, auth=backend.auth)
        assert response.status_code == 200, response.text

    assert len(selects) == 2


def test_a_client_unknown_a_moment_ago_is_found_once_registered_on_another_instance(
    client, other_instance
):
    """Unknown ids are not kept (registering a client writes no new version): nobody fills the
    memory by making ids up, and a relying party registered elsewhere works at once."""
    stranger = RegisteredClient("late-rp", "not-yet-a-secret")
    for _ in range(2):
        assert refused(token_request(client, OWN_TOKEN, auth=stranger.auth))

    with other_instance.app_context():
        late = register(
            other_instance,
            {
                "client_id": "late-rp",
                "grant_types": ["client_credentials"],
                "scope": "org.operators",
            },
        )

    assert token_request(client, OWN_TOKEN, auth=late.auth).status_code == 200
