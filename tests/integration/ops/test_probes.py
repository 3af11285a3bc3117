"""``GET /healthz`` and ``GET /readyz`` as a load balancer sees them: status code, JSON, no
cookie, not cached; readiness on each database and store, and what it names when a dependency
is missing (an unreachable store or database, no active signing key).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.signing.files import FileKeyStore
from tests.conftest import both_databases

ALL_OK = {"database": "ok", "store": "ok", "signing_keys": "ok"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_plain_json(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    body: dict[str, Any] = response.json
    return body


def test_healthz_says_the_process_answers(client: FlaskClient) -> None:
    assert assert_plain_json(client.get("/healthz"), 200) == {"status": "ok"}


def test_readyz_on_the_embedded_default(client: FlaskClient) -> None:
    """SQLite and the SQL store."""
    body = assert_plain_json(client.get("/readyz"), 200)

    assert body == {"status": "ready", "checks": ALL_OK}


def test_probes_answer_get_and_head_only(client: FlaskClient) -> None:
    assert client.head("/readyz").status_code == 200
    assert client.post("/readyz").status_code == 405
    assert client.post("/healthz").status_code == 405


class TestOnPostgresqlAndRedis:
    @pytest.fixture
    def settings_overrides(self, redis_url: str) -> dict[str, object]:
        return {"store_backend": "redis", "redis_url": redis_url}

    @both_databases
    def test_readyz(self, client: FlaskClient, settings: Any) -> None:
        body = assert_plain_json(client.get("/readyz"), 200)

        assert body == {"status": "ready", "checks": ALL_OK}


class TestStoreUnreachable:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"store_backend": "redis", "redis_url": f"redis://127.0.0.1:{closed_port()}/0"}

    def test_readyz_names_the_store(self, client: FlaskClient) -> None:
        body = assert_plain_json(client.get("/readyz"), 503)

        assert body["status"] == "not ready"
        assert body["failing"] == ["store"]
        assert body["checks"]["store"] == "unavailable (ConnectionError)"
        assert body["checks"]["database"] == body["checks"]["signing_keys"] == "ok"

    def test_healthz_still_answers(self, client: FlaskClient) -> None:
        assert assert_plain_json(client.get("/healthz"), 200) == {"status": "ok"}


class TestDatabaseUnreachable:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"database_url": f"postgresql+psycopg://idp@127.0.0.1:{closed_port()}/idp"}

    @pytest.fixture
    def app(self, settings: Any) -> Any:
        """No migrated database to start from: the server is down."""
        from idp import create_app, db

        app = create_app(settings)
        yield app
        db.dispose(app)

    def test_readyz_names_the_database_and_the_sql_store_on_it(self, app: Flask) -> None:
        body = assert_plain_json(app.test_client().get("/readyz"), 503)

        assert body["failing"] == ["database", "store"]
        assert body["checks"]["database"] == "unavailable (OperationalError)"
        assert body["checks"]["signing_keys"] == "ok"
        assert "127.0.0.1" not in str(body)  # no host, port or user in a public answer


class TestNoActiveSigningKey:
    @pytest.fixture
    def keys_dir(self, tmp_path: Path) -> Path:
        """Only an ES256 key: the RS256 one that discovery advertises is missing."""
        path = tmp_path / "only-es256"
        FileKeyStore(path).generate("ES256")
        return path

    def test_readyz_names_the_missing_key(self, client: FlaskClient) -> None:
        body = assert_plain_json(client.get("/readyz"), 503)

        assert body["failing"] == ["signing_keys"]
        assert body["checks"]["signing_keys"] == (
            "no active RS256 signing key: run 'idp keys generate --alg RS256'"
        )


class TestEmptyKeyStore:
    @pytest.fixture
    def keys_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "no-keys"

    def test_readyz_names_the_signing_keys(self, client: FlaskClient) -> None:
        body = assert_plain_json(client.get("/readyz"), 503)

        assert body["failing"] == ["signing_keys"]
        assert "no active ES256 signing key" in body["checks"]["signing_keys"]
