"""The platform console on every backend: SQLite and PostgreSQL (with the SQL store on the same
database) and the Redis store, where a TOTP code's single use and the admin session live.
Skips where a service is absent, fails under IDP_TEST_REQUIRE_ALL=1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import both_databases
from tests.integration.admin.helpers import enrol, log_in, password_step, post_form, totp


def admin_journey(client: FlaskClient, app: Flask) -> None:
    """Enrol, a replayed code refused, a second login, a relying party registered and removed."""
    secret, codes, response = enrol(client)
    assert response.status_code == 200 and len(codes) == 10
    other = app.test_client()
    password_step(other)
    assert post_form(other, "/admin/login/code", code=totp(secret, 0)).status_code == 400
    assert log_in(other, secret, step=1).headers["Location"] == "/admin/"
    form = {
        "client_id": "journey-rp",
        "client_name": "Journey",
        "redirect_uris": "https://journey.example/cb",
        "grant_types": "authorization_code",
        "scopes": "openid",
        "token_endpoint_auth_method": "client_secret_basic",
        "refresh_token_reuse_interval": "0",
    }
    assert post_form(other, "/admin/clients/new", **form).status_code == 200
    url = "/admin/clients/journey-rp/remove"
    stepped = post_form(other, f"/admin/step-up?next={url}", code=totp(secret, -1))
    assert stepped.headers["Location"] == url
    assert post_form(other, url).headers["Location"] == "/admin/clients"
    assert "journey-rp" not in other.get("/admin/clients").text
    assert "删除应用" in other.get("/admin/audit").text


@both_databases
def test_console_on_each_database(client, app, platform_admin):
    admin_journey(client, app)


class TestRedisStore:
    @pytest.fixture
    def settings_overrides(self, redis_url: str) -> dict[str, object]:
        return {"store_backend": "redis", "redis_url": redis_url}

    @pytest.fixture
    def key_prefix(self, app: Flask) -> Iterator[str]:
        """A key prefix of this test's own in the shared Redis database."""
        from idp.store import store
        from idp.store.redis import RedisStore

        redis_store = store()
        assert isinstance(redis_store, RedisStore)
        redis_store.prefix = f"idp-test-{uuid.uuid4().hex}:"
        yield redis_store.prefix
        for key in redis_store.client.scan_iter(match=redis_store.prefix + "*"):
            redis_store.client.delete(key)

    def test_console_on_the_redis_store(self, key_prefix, client, app, platform_admin):
        admin_journey(client, app)
