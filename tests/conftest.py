"""Shared fixtures: settings, a migrated database per test, the app and its test client.

The embedded default (SQLite + SQL store) is the base; PostgreSQL and Redis are variants chosen
with the ``db_url``/``store_backend`` fixtures. A missing service skips with a reason, and fails
under IDP_TEST_REQUIRE_ALL=1.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app, db
from idp.config import Settings
from idp.migrate import upgrade

REQUIRE_ALL = os.environ.get("IDP_TEST_REQUIRE_ALL") == "1"
POSTGRES_URL = os.environ.get(
    "IDP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ISSUER = "http://localhost"


def missing(reason: str) -> None:
    """Skip because a real component is absent; under IDP_TEST_REQUIRE_ALL=1 that is a failure."""
    if REQUIRE_ALL:
        pytest.fail(f"required component missing (IDP_TEST_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


# --- databases --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "idp.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database(worker_id: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this xdist worker's own."""
    try:
        import psycopg

        admin = psycopg.connect(
            POSTGRES_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3
        )
    except Exception as error:
        missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    name = f"idp_test_{worker_id}_{uuid.uuid4().hex[:6]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """The database of one test. Modules parametrize it with ``["sqlite", "postgresql"]``
    (see ``both_databases``)."""
    if request.param == "sqlite":
        path = tmp_path / "idp.sqlite3"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_database")
    yield url
    truncate_all(url)


def truncate_all(url: str) -> None:
    from sqlalchemy import text

    from idp.db import Base, make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


both_databases = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:
        missing(f"Redis not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


@pytest.fixture
def hsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty SoftHSM2 token of this test's own (``tests.hsm.HsmToken``), with
    ``SOFTHSM2_CONF`` pointing at it."""
    from tests.hsm import make_hsm_token, softhsm_missing

    reason = softhsm_missing()
    if reason:
        missing(reason)
    token = make_hsm_token(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return token


# --- app --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Signing keys generated once per session (ES256 and RS256)."""
    from idp.signing.files import FileKeyStore

    path = tmp_path_factory.mktemp("keys")
    key_store = FileKeyStore(path)
    key_store.generate("ES256")
    key_store.generate("RS256")
    return path


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(
    tmp_path: Path, db_url: str, keys_dir: Path, settings_overrides: dict[str, object]
) -> Settings:
    values: dict[str, object] = {
        "issuer": ISSUER,
        "dev_mode": True,
        "instance_dir": tmp_path,
        "database_url": db_url,
        "keys_dir": keys_dir,
        "secret_key": "test-secret-key-" + uuid.uuid4().hex,
        # A queue of this test's own (on Redis, db 15 is shared), retried without waiting.
        "sms_queue_name": "idp_test_" + uuid.uuid4().hex,
        "sms_retry_delay": 0,
    }
    values.update(settings_overrides)
    return Settings.from_env({}, **values)


class IsolatedClient(FlaskClient):
    """A test client whose every request gets a fresh app context (and so a fresh ``g``), as in
    production: the ``app`` fixture keeps an app context pushed for the test's own database
    work, and Flask would otherwise reuse it for every request of the test."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config.update(TESTING=True)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
    with contextlib.suppress(redis.RedisError, sqlite3.Error):
        app.extensions["idp.sms_queue"].storage.flush_all()  # only this test's queue
    db.dispose(app)
    app.extensions["idp.keys"].close()  # a PKCS#11 store unloads its module


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def outbox(app: Flask, settings: Settings) -> Outbox:
    return Outbox(settings.sms_outbox, deliver=lambda: drain_sms_queue(app))


def drain_sms_queue(app: Flask) -> None:
    """Deliver every queued SMS in this thread until the queue is empty, as ``idp worker`` does
    (huey's own dequeue and execute; retries included, the tests' retry delay being 0): the
    stand-in for waiting until the worker has caught up."""
    queue = app.extensions["idp.sms_queue"]
    try:
        while queue.pending_count():
            task = queue.dequeue()
            if task is not None:
                queue.execute(task)
    except redis.ConnectionError:
        return  # an unreachable Redis holds no queue (the tests of a store that is down)


class Outbox:
    """Reads the development SMS outbox (one JSON object per line), once the queued SMS have
    been delivered: what the phones have received by now."""

    def __init__(self, path: Path, deliver: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self.deliver = deliver

    def messages(self) -> list[dict[str, str]]:
        import json

        self.deliver()
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def last(self, phone: str, purpose: str | None = None) -> dict[str, str]:
        found = [
            m for m in self.messages() if m["phone"] == phone and purpose in (None, m["purpose"])
        ]
        assert found, f"no SMS to {phone}"
        return found[-1]


# --- domain fixtures ------------------------------------------------------------------------------

DEMO_USCC = "91310000MA1K000019"
OTHER_USCC = "91310115MA1H7GXX3K"
OTHER_ORG_NAME = "上海另一家代理记账有限公司"


@pytest.fixture
def org(app: Flask):
    from idp import db
    from idp.orgs.registration import add_org

    org = add_org(db.session(), uscc=DEMO_USCC, name="上海示例审计事务所有限公司", org_type="audit")
    db.session().commit()
    return org


@pytest.fixture
def known(app: Flask):
    """Add a (name, phone) pair the sandbox real-name check confirms."""
    verifier = app.extensions["idp.realname"]
    return lambda name, phone: verifier.add(name=name, phone=phone)


@pytest.fixture
def realname_outage(app: Flask):
    """Make the sandbox real-name check answer "service unavailable" for a phone."""
    verifier = app.extensions["idp.realname"]

    def outage(phone: str) -> None:
        with verifier.path.open("a", encoding="utf-8") as handle:
            handle.write(f"!unavailable,{phone}\n")

    return outage


def register_for(org, client_id: str) -> None:
    """The org's first identity is registered for ``client_id`` (as the wizard leaves it)."""
    from idp import db
    from idp.identity.models import IdentityRegistration

    db.session().add(IdentityRegistration(identity_id=org.identities[0].id, client_id=client_id))
    db.session().commit()


def add_other_org(client_id: str):
    """A second organisation (代理记账公司), registered for ``client_id``."""
    from idp import db
    from idp.orgs.registration import add_org

    other = add_org(db.session(), uscc=OTHER_USCC, name=OTHER_ORG_NAME, org_type="bookkeeping")
    db.session().commit()
    register_for(other, client_id)
    return other


def enrol(session, org, *, name: str, phone: str, password: str | None = None):
    """Make ``phone`` an operator of ``org`` as ``idp operators add`` does; the account."""
    from idp.identity.models import Account
    from idp.orgs.operators import add_operator_for_platform

    added = add_operator_for_platform(
        session, org, name=name, phone=phone, password=password, actor="test"
    )
    return session.get(Account, added.account_id)


def make_operator(org, *, name: str, phone: str, first_login: bool):
    from idp import db
    from tests.flows import PASSWORD

    account = enrol(db.session(), org, name=name, phone=phone, password=PASSWORD)
    account.must_change_password = first_login
    db.session().commit()
    return account


@pytest.fixture
def operator(app: Flask, org):
    """An active operator who has already changed the initial password."""
    return make_operator(org, name="张三", phone="13800138000", first_login=False)


@pytest.fixture
def new_operator(app: Flask, org):
    """An operator before the first login (must change the password)."""
    return make_operator(org, name="李四", phone="13900139000", first_login=True)


@pytest.fixture
def rp(app: Flask) -> RegisteredClient:
    """A confidential relying party with refresh tokens."""
    return register(
        app,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": ["https://rp.example/callback"],
            "post_logout_redirect_uris": ["https://rp.example/logged-out"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile phone",
        },
    )


@pytest.fixture
def public_rp(app: Flask) -> RegisteredClient:
    return register(
        app,
        {
            "client_name": "Public app",
            "redirect_uris": ["https://rp.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    )


class RegisteredClient:
    def __init__(self, client_id: str, secret: str | None) -> None:
        self.client_id = client_id
        self.secret = secret

    @property
    def auth(self) -> tuple[str, str]:
        assert self.secret is not None
        return (self.client_id, self.secret)


def register(app: Flask, metadata: dict[str, object]) -> RegisteredClient:
    from idp import db
    from idp.oidc.clients import register_client

    client, secret = register_client(db.session(), metadata)
    db.session().commit()
    return RegisteredClient(client.client_id, secret)
