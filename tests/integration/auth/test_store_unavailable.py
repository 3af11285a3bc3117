"""The ephemeral store holds every security counter: when it cannot be reached, the SMS request
and the login fail closed with 503 (JSON for the script, a page for the form), never a login."""

from __future__ import annotations

import pytest

from idp.identity.models import Account
from tests.flows import PASSWORD
from tests.integration.auth.helpers import (
    ask_code,
    audit_events,
    fresh,
    login_token,
    post_login,
    session_cookie,
)

UNAVAILABLE = "服务暂不可用，请稍后再试"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"store_backend": "redis", "redis_url": "redis://127.0.0.1:1/0"}


def test_sms_request_fails_closed(client, outbox, operator):
    response = ask_code(client, operator.phone)

    assert response.status_code == 503
    assert response.json == {"error": "store_unavailable", "error_description": UNAVAILABLE}
    assert outbox.messages() == []
    assert audit_events("auth.sms_code_requested") == []


def test_login_fails_closed(client, outbox, operator):
    token = login_token(client)  # the login page itself needs no store

    response = post_login(
        client, phone=operator.phone, password=PASSWORD, sms_code="123456", token=token
    )

    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert UNAVAILABLE in response.text
    assert session_cookie(client) is None
    assert audit_events("auth.login_succeeded") == []
    assert fresh(Account, operator.id).last_login_at is None


def test_a_session_cookie_is_not_trusted_without_the_store(client, operator):
    client.set_cookie("idp_session", "some-session-id")

    response = client.get("/portal")

    assert response.status_code == 503
    assert "统一认证登录平台" in response.text
    assert "张三" not in response.text
