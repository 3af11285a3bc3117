"""Fixtures of the multi-instance tests: per test module, a fresh migrated PostgreSQL database,
a private redis-server and three provider instances under ``idp-serve`` (``tests/multi/harness.py``),
started once; per test, empty tables, an empty Redis and an empty SMS outbox.

Needs PostgreSQL (``IDP_TEST_POSTGRES_URL``) and ``redis-server`` on ``PATH``: without them the
tests skip with the reason, and fail under IDP_TEST_REQUIRE_ALL=1.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from idp.migrate import upgrade
from tests.conftest import POSTGRES_URL, Outbox, drain_sms_queue, missing, truncate_all
from tests.multi.harness import Browser, Cluster, RedisServer, started


@pytest.fixture(scope="module")
def multi_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own, dropped at its end."""
    try:
        import psycopg

        admin = psycopg.connect(
            POSTGRES_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3
        )
    except Exception as error:
        missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    name = f"idp_multi_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        missing("redis-server not installed (apt-get install redis-server)")
    server = RedisServer(executable, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def multi_pki():
    from tests.pki import shared_pki

    return shared_pki()


@pytest.fixture(scope="module")
def cluster_overrides() -> dict[str, str]:
    """Override in a module for settings of its own (``IDP_*`` names)."""
    return {}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    multi_database: str,
    redis_server: RedisServer,
    multi_pki,
    cluster_overrides: dict[str, str],
) -> Iterator[Cluster]:
    from idp.signing.files import FileKeyStore

    directory = tmp_path_factory.mktemp("cluster")
    keys_dir = directory / "keys"
    keys = FileKeyStore(keys_dir)
    keys.generate("ES256")
    keys.generate("RS256")
    trust_dir = multi_pki.write_trust_dir(directory / "trust")
    cluster = Cluster(
        directory=directory,
        database_url=multi_database,
        redis_url=redis_server.url,
        keys_dir=keys_dir,
        trust_dir=trust_dir,
        overrides=cluster_overrides,
    )
    with started(cluster):
        yield cluster


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-sized Argon2id for the passwords this process sets (the instances verify them with
    the parameters stored in the hash; see tests/integration/conftest.py)."""
    from idp.auth import passwords

    monkeypatch.setattr(passwords, "current_hasher", lambda: passwords._hasher(1, 1024, 1))


@pytest.fixture
def control(cluster: Cluster, redis_server: RedisServer) -> Iterator[Flask]:
    """The test process's app with the instances' settings, its context pushed; every test
    starts from empty tables, an empty Redis and an empty outbox."""
    assert cluster.control is not None
    truncate_all(cluster.database_url)
    redis_server.flush()
    for name in ("IDP_SMS_OUTBOX", "IDP_REALNAME_SANDBOX_FILE"):
        Path(cluster.env[name]).unlink(missing_ok=True)
    with cluster.control.app_context():
        yield cluster.control


@pytest.fixture
def outbox(control: Flask, cluster: Cluster) -> Outbox:
    """What the phones have received, once the queued SMS are delivered (``drain_sms_queue``:
    the test process stands in for ``idp worker``)."""
    return Outbox(Path(cluster.env["IDP_SMS_OUTBOX"]), deliver=lambda: drain_sms_queue(control))


@pytest.fixture
def browser() -> Browser:
    return Browser()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report carries the end of every instance's log."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(cluster, Cluster):
        report.sections.append(("provider instances", cluster.logs()))
