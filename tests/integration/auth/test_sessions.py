"""Login sessions: logout with confirmation, idle and absolute lifetimes, and a fresh session id
at every login (no session fixation).

The lifetimes are set to 1-2 s with ``settings_overrides`` and waited out with short sleeps. After
a wait the old cookie is sent again explicitly, so it is the server that refuses it, not the test
client dropping an expired cookie.
"""

from __future__ import annotations

import json
import time

import pytest

from idp.auth import session as login_session
from idp.store import store
from tests.conftest import both_databases
from tests.flows import PASSWORD, login
from tests.integration.auth.helpers import allow_resend, login_token, session_cookie
from tests.integration.oidc.helpers import PausePoint

PHONE = "13800138000"


def portal_with(client, session_id: str):
    client.set_cookie("idp_session", session_id)
    return client.get("/portal")


def stored_session(session_id: str) -> dict:
    raw = store().get(f"session:{session_id}")
    assert raw is not None
    return json.loads(raw)


def assert_logged_out(response) -> None:
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_logout_page_asks_for_confirmation(client, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)

    page = client.get("/logout")

    assert page.status_code == 200
    assert "确定要退出统一认证登录平台吗？" in page.text
    assert '<form method="post" action="/logout">' in page.text
    assert 'name="csrf_token"' in page.text
    assert client.get("/portal").status_code == 200  # GET alone logs nobody out


def test_logout_page_without_a_session_says_so(client):
    page = client.get("/logout")

    assert page.status_code == 200
    assert "您尚未登录。" in page.text
    assert "<form" not in page.text


def test_logout_ends_the_session_server_side(client, app, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)
    session_id = session_cookie(client)
    assert session_id is not None

    response = client.post("/logout", data={"csrf_token": login_token(client)})

    assert response.status_code == 200
    assert "您已安全退出" in response.text
    (cleared,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session=")]
    assert cleared.startswith("idp_session=;")
    assert "Max-Age=0" in cleared
    assert session_cookie(client) is None
    assert_logged_out(client.get("/portal"))
    assert_logged_out(portal_with(app.test_client(), session_id))


def test_logout_without_csrf_token_keeps_the_session(client, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)

    response = client.post("/logout")

    assert response.status_code == 400
    assert client.get("/portal").status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"session_idle_ttl": 1}])
def test_idle_session_expires(client, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)
    session_id = session_cookie(client)
    assert client.get("/portal").status_code == 200

    time.sleep(1.2)

    assert_logged_out(portal_with(client, session_id))


@pytest.mark.parametrize("settings_overrides", [{"session_idle_ttl": 2}])
def test_activity_keeps_an_idle_session_alive(client, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)

    time.sleep(1.2)
    assert client.get("/portal").status_code == 200
    time.sleep(1.2)  # 2.4 s after login, 1.2 s after the last request

    assert client.get("/portal").status_code == 200


def test_requests_moments_apart_write_the_session_once(client, outbox, operator):
    """Within a tenth of the idle lifetime (at most a minute) a request does not write the
    session back: the stored record keeps the time of its last write."""
    login(client, outbox, phone=PHONE, password=PASSWORD)
    written = stored_session(session_cookie(client))["last_seen"]

    assert client.get("/portal").status_code == 200
    assert client.get("/portal").status_code == 200

    assert stored_session(session_cookie(client))["last_seen"] == written


@pytest.mark.parametrize("settings_overrides", [{"session_idle_ttl": 2}])
def test_a_request_after_a_tenth_of_the_idle_lifetime_writes_the_session(client, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)
    written = stored_session(session_cookie(client))["last_seen"]

    time.sleep(0.3)  # a tenth of 2 s is 0.2 s
    assert client.get("/portal").status_code == 200

    assert stored_session(session_cookie(client))["last_seen"] > written


@pytest.mark.parametrize("settings_overrides", [{"session_absolute_ttl": 1}])
def test_session_expires_after_its_absolute_lifetime_despite_activity(client, outbox, operator):
    response = login(client, outbox, phone=PHONE, password=PASSWORD)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("idp_session"))
    assert "Max-Age" not in cookie  # a browser-session cookie; the server keeps the lifetime
    session_id = session_cookie(client)

    time.sleep(0.5)
    assert portal_with(client, session_id).status_code == 200  # activity, idle TTL is 30 min
    time.sleep(0.7)

    assert_logged_out(portal_with(client, session_id))


def test_a_planted_session_id_is_not_adopted_at_login(client, app, outbox, operator):
    client.set_cookie("idp_session", "attacker-chosen-session-id")

    response = login(client, outbox, phone=PHONE, password=PASSWORD)

    assert response.status_code == 302
    assert session_cookie(client) != "attacker-chosen-session-id"
    assert client.get("/portal").status_code == 200
    assert_logged_out(portal_with(app.test_client(), "attacker-chosen-session-id"))


def test_logging_in_again_replaces_the_session_id(client, app, outbox, operator):
    login(client, outbox, phone=PHONE, password=PASSWORD)
    first = session_cookie(client)
    allow_resend(PHONE)

    login(client, outbox, phone=PHONE, password=PASSWORD)
    second = session_cookie(client)

    assert second is not None
    assert second != first
    assert client.get("/portal").status_code == 200
    assert_logged_out(portal_with(app.test_client(), first))


def test_portal_without_a_session_goes_to_login(client):
    assert_logged_out(client.get("/portal"))
    assert_logged_out(portal_with(client, "no-such-session"))


@both_databases
def test_a_request_in_flight_during_logout_cannot_bring_the_session_back(
    client, app, outbox, operator, monkeypatch
):
    """The request read the session before the logout and writes it back (its idle lifetime
    starts again) after: the session stays ended, on the server, for any holder of the id."""
    login(client, outbox, phone=PHONE, password=PASSWORD)
    session_id = session_cookie(client)
    token = login_token(client)
    csrf_cookie = client.get_cookie("idp_csrf").value  # renewed at login
    pause = PausePoint()
    monkeypatch.setattr(login_session, "TOUCH_INTERVAL_MAX", 0)  # every request writes it back
    monkeypatch.setattr(login_session, "save", pause.wrap(login_session.save))

    def in_flight():
        return portal_with(app.test_client(), session_id)

    def log_out():
        other_tab = app.test_client()
        other_tab.set_cookie("idp_session", session_id)
        other_tab.set_cookie("idp_csrf", csrf_cookie)
        return other_tab.post("/logout", data={"csrf_token": token})

    _held, logged_out = pause.race(in_flight, log_out)

    assert logged_out.status_code == 200
    assert "您已安全退出" in logged_out.text
    assert_logged_out(portal_with(app.test_client(), session_id))
