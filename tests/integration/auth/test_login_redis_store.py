"""The core operator login with the Redis ephemeral store (skips when Redis is absent, fails
under IDP_TEST_REQUIRE_ALL=1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from idp.store import store
from idp.store.redis import RedisStore
from tests.flows import NEW_PASSWORD, PASSWORD, change_password, login
from tests.integration.auth.helpers import allow_resend, core_login_journey, session_cookie


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, object]:
    return {"store_backend": "redis", "redis_url": redis_url}


@pytest.fixture
def key_prefix(app: Flask) -> Iterator[str]:
    """Give this test's RedisStore a key prefix of its own (``RedisStore.prefix`` exists so one
    Redis can serve several apps): db 15 is shared by parallel workers and other suites, and
    every key here (phone counters, 127.0.0.1's hourly SMS count) would otherwise collide.
    Only this prefix's keys are deleted afterwards; the rest of db 15 is left alone."""
    redis_store = store()
    assert isinstance(redis_store, RedisStore)
    redis_store.prefix = f"idp-test-{uuid.uuid4().hex}:"
    yield redis_store.prefix
    for key in redis_store.client.scan_iter(match=redis_store.prefix + "*"):
        redis_store.client.delete(key)


def keys(prefix: str) -> set[str]:
    redis_store = store()
    assert isinstance(redis_store, RedisStore)
    return {k.decode()[len(prefix) :] for k in redis_store.client.scan_iter(match=prefix + "*")}


def test_operator_login_on_the_redis_store(key_prefix, client, outbox, operator):
    core_login_journey(client, outbox, phone=operator.phone, password=PASSWORD)

    left = keys(key_prefix)
    assert any(k.startswith(f"sms:interval:{operator.phone}:") for k in left)
    assert not any(k.startswith(f"sms:code:login:{operator.phone}:") for k in left)  # used up
    assert not any(k.startswith("session:") for k in left)  # ended by the logout


def test_the_session_lives_in_redis(key_prefix, client, outbox, operator):
    from tests.flows import login

    login(client, outbox, phone=operator.phone, password=PASSWORD)

    assert f"session:{session_cookie(client)}" in keys(key_prefix)


def test_a_password_change_ends_the_other_sessions_on_the_redis_store(
    key_prefix, app, client, outbox, operator
):
    other = app.test_client()
    assert login(other, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    allow_resend(operator.phone)
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    theirs, mine = session_cookie(other), session_cookie(client)

    changed = change_password(client, current=PASSWORD, new=NEW_PASSWORD)

    assert changed.status_code == 302
    assert client.get("/portal").status_code == 200
    portal = other.get("/portal")
    assert (portal.status_code, portal.headers.get("Location")) == (302, "/login")
    sessions = {k for k in keys(key_prefix) if k.startswith("session:")}
    renewed = session_cookie(client)  # the session that changed it goes on under a new id
    assert renewed != mine
    assert sessions == {f"session:{renewed}"}
    assert f"session:{theirs}" not in sessions
