"""The wizard's core on every backend: SQLite and PostgreSQL (with the SQL store on the same
database) and the Redis store. Skips where a service is absent, fails under
IDP_TEST_REQUIRE_ALL=1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import both_databases
from tests.integration.orgs.helpers import (
    LOCKED,
    WRONG,
    add_legacy,
    cert_login,
    code_at,
    form_error,
    post_form,
    register_details,
    row_counts,
    stored_login,
    wrong_code,
)


def wizard_journey(client, fund) -> None:
    """否 for one type, 是 (TOTP) for another, a reused code, and a lockout."""
    cert_login(client)
    add_legacy(fund.client_id, org_type="audit", ref="AUDIT-1")
    add_legacy(fund.client_id, org_type="bookkeeping", ref="BOOK-1")

    done = post_form(
        client,
        "/register/cost_consulting/new",
        {**register_details(), "platforms": fund.client_id},
    )
    assert "注册成功" in done.text
    org_id = stored_login(client.get_cookie("idp_session").value)["org_id"]
    assert org_id is not None

    code = code_at(0)
    bind = {"client_id": fund.client_id, "legacy_account": "AUDIT-1"}
    assert "绑定成功" in post_form(client, "/register/audit/bind", {**bind, "otp_code": code}).text

    book = {"client_id": fund.client_id, "legacy_account": "BOOK-1"}
    for _ in range(5):
        refused = post_form(
            client, "/register/bookkeeping/bind", {**book, "otp_code": wrong_code()}
        )
        assert form_error(refused.text) == WRONG
    locked = post_form(client, "/register/bookkeeping/bind", {**book, "otp_code": code_at(0)})
    assert (locked.status_code, form_error(locked.text)) == (429, LOCKED)

    assert row_counts() == {
        "Organisation": 1,
        "OrgIdentity": 2,
        "IdentityRegistration": 2,
        "LegacyAccount": 2,
    }
    assert stored_login(client.get_cookie("idp_session").value)["org_id"] == org_id


@both_databases
def test_wizard_on_each_database(client, fund):
    wizard_journey(client, fund)


class TestRedisStore:
    @pytest.fixture
    def settings_overrides(self, redis_url: str) -> dict[str, object]:
        return {"store_backend": "redis", "redis_url": redis_url}

    @pytest.fixture
    def key_prefix(self, app: Flask) -> Iterator[str]:
        """A key prefix of this test's own in the shared Redis database (see
        tests/integration/auth/test_login_redis_store.py)."""
        from idp.store import store
        from idp.store.redis import RedisStore

        redis_store = store()
        assert isinstance(redis_store, RedisStore)
        redis_store.prefix = f"idp-test-{uuid.uuid4().hex}:"
        yield redis_store.prefix
        for key in redis_store.client.scan_iter(match=redis_store.prefix + "*"):
            redis_store.client.delete(key)

    def test_wizard_on_the_redis_store(self, key_prefix, client, fund):
        wizard_journey(client, fund)
