"""/account's session list and 退出 with the Redis ephemeral store, whose per-person index is a
sorted set (skips when Redis is absent, fails under IDP_TEST_REQUIRE_ALL=1)."""

from __future__ import annotations

import re

import pytest

from idp.store import store
from idp.store.redis import RedisStore
from tests.flows import PASSWORD, csrf_token, login
from tests.integration.auth.helpers import allow_resend
from tests.integration.auth.test_login_redis_store import key_prefix  # noqa: F401  (fixture)


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, object]:
    return {"store_backend": "redis", "redis_url": redis_url}


def indexed(account_id: int) -> list[str]:
    redis_store = store()
    assert isinstance(redis_store, RedisStore)
    members = redis_store.client.zrange(
        f"{redis_store.prefix}index/sessions:account:{account_id}", 0, -1
    )
    return sorted(m.decode() for m in members)


def test_sessions_are_listed_and_ended_on_redis(key_prefix, app, client, outbox, operator):  # noqa: F811
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    other = app.test_client()
    allow_resend(operator.phone)
    assert login(other, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    assert len(indexed(operator.id)) == 2

    page = client.get("/account")
    sids = re.findall(r'id="session-([A-Za-z0-9_-]+)"', page.text)
    assert len(sids) == 2
    (theirs,) = re.findall(r'<tr id="session-([A-Za-z0-9_-]+)">', page.text)

    ended = client.post(
        "/account/sessions/end", data={"sid": theirs, "csrf_token": csrf_token(page.text)}
    )

    assert ended.status_code == 302
    assert other.get("/account").headers["Location"] == "/login"
    assert len(indexed(operator.id)) == 1
    assert len(re.findall(r'id="session-', client.get("/account").text)) == 1
