"""The console and the join request on every backend: SQLite and PostgreSQL (with the SQL store on
the same database) and the Redis store. Skips where a service is absent, fails under
IDP_TEST_REQUIRE_ALL=1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import DEMO_USCC, both_databases
from tests.flows import csrf_token, login
from tests.integration.auth.helpers import allow_resend
from tests.integration.console.helpers import (
    MISMATCH,
    form_error,
    membership_id,
    people_counts,
    post_form,
    row_ids,
)


def console_journey(admin, browser, outbox, known, home_org) -> None:
    """【增加】 (and a mismatch), search, 停用, 【删除】; a join request approved and one rejected."""
    known("王小明", "13700137001")
    known("赵六", "13500135000")
    known("孙八", "13300133000")
    refused = post_form(admin, "/org/operators/new", {"name": "王大明", "phone": "13700137001"})
    assert form_error(refused.text) == MISMATCH
    assert people_counts() == {"Account": 0, "Membership": 0, "JoinRequest": 0}
    added = post_form(admin, "/org/operators/new", {"name": "王小明", "phone": "13700137001"})
    assert added.status_code == 302
    ident = membership_id("13700137001", home_org.id)
    assert row_ids(admin.get("/org/operators?q=小明").text, "operator") == [ident]
    assert row_ids(admin.get("/org/operators?q=_").text, "operator") == []
    edit = {"phone": "13700137001", "status": "disabled"}
    assert post_form(admin, f"/org/operators/{ident}/edit", edit).status_code == 302
    assert row_ids(admin.get("/org/operators?status=disabled").text, "operator") == [ident]
    assert post_form(admin, f"/org/operators/{ident}/delete", {}).status_code == 302
    assert row_ids(admin.get("/org/operators").text, "operator") == []

    for name, phone in (("赵六", "13500135000"), ("孙八", "13300133000")):
        token = csrf_token(browser.get("/join").text)
        sent = browser.post("/join/sms-code", data={"phone": phone, "csrf_token": token})
        assert sent.status_code == 200
        code = outbox.last(phone, "join")["code"]
        data = {"uscc": DEMO_USCC, "name": name, "phone": phone, "sms_code": code}
        assert browser.post("/join", data={**data, "csrf_token": token}).status_code == 200
    approve, reject = sorted(row_ids(admin.get("/org/reviews").text, "join-request"))
    assert post_form(admin, f"/org/reviews/{approve}/approve", {}).status_code == 302
    assert post_form(admin, f"/org/reviews/{reject}/reject", {"reason": "不符"}).status_code == 302
    assert "不符" in outbox.last("13300133000", "join_rejected")["text"]

    password = outbox.last("13500135000", "initial_password")["code"]
    allow_resend("13500135000")
    operator = login(browser, outbox, phone="13500135000", password=password)
    assert operator.headers["Location"] == "/password/change"
    assert "新增操作员" in admin.get("/org/audit").text


@both_databases
def test_console_on_each_database(admin, browser, outbox, known, home_org):
    console_journey(admin, browser, outbox, known, home_org)


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

    def test_console_on_the_redis_store(self, key_prefix, admin, browser, outbox, known, home_org):
        console_journey(admin, browser, outbox, known, home_org)
