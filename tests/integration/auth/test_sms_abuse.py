"""Someone who knows only a phone number cannot keep its owner from logging in: their wrong
codes, their requests for codes (on the login and the join page) and their spending of the
limits stay on their own browser and network. Limits per network (IPv6: per /64), per phone
and in total hold a stranger who rotates browsers or addresses; a browser that has logged in as
the phone before is held by its own counters only."""

from __future__ import annotations

import re

import pytest

from idp.auth.client import BROWSER_COOKIE
from tests.flows import PASSWORD, csrf_token
from tests.integration.auth.helpers import (
    SENT_ANSWER,
    TOO_MANY_CODE_TRIES,
    WRONG_CODE,
    all_field_errors,
    allow_resend,
    ask_code,
    audit_events,
    login_token,
    post_login,
)

PHONE = "13800138000"
OWNER_IP = "127.51.100.20"  # development mode serves loopback clients only
STRANGER_IP = "127.0.113.66"
TOO_MANY_ATTEMPTS = "登录尝试过于频繁，请稍后再试"


def browser_at(app, ip: str):
    """A new browser (its own cookie jar) at address ``ip``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def owner_code(owner, outbox) -> str:
    assert ask_code(owner, PHONE).json == SENT_ANSWER
    return outbox.last(PHONE, "login")["code"]


def ask_join_code(client, phone: str = PHONE):
    token = csrf_token(client.get("/join").text)
    return client.post("/join/sms-code", data={"phone": phone, "csrf_token": token})


def log_in(client, code: str):
    return post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)


# --- the owner's code -------------------------------------------------------------------------


def test_a_strangers_wrong_codes_do_not_burn_the_owners_code(app, outbox, operator):
    owner = browser_at(app, OWNER_IP)
    code = owner_code(owner, outbox)
    stranger = browser_at(app, STRANGER_IP)
    token = login_token(stranger)
    guesses = [f"{n:06d}" for n in range(10) if f"{n:06d}" != code][:8]

    shown = [
        all_field_errors(log_in_with(stranger, guess, token).text)["sms_code"] for guess in guesses
    ]

    assert shown == [[WRONG_CODE]] * 5 + [[TOO_MANY_CODE_TRIES]] * 3
    assert log_in(owner, code).headers["Location"] == "/portal"


def log_in_with(client, code: str, token: str):
    return post_login(client, phone=PHONE, password=PASSWORD, sms_code=code, token=token)


def test_a_code_works_only_in_the_browser_that_asked_for_it(app, outbox, operator):
    owner = browser_at(app, OWNER_IP)
    code = owner_code(owner, outbox)
    elsewhere = browser_at(app, OWNER_IP)  # same network, another browser

    refused = log_in(elsewhere, code)

    assert all_field_errors(refused.text) == {"sms_code": [WRONG_CODE]}
    assert log_in(owner, code).headers["Location"] == "/portal"


def test_a_strangers_request_does_not_replace_the_owners_code(app, outbox, operator):
    owner = browser_at(app, OWNER_IP)
    code = owner_code(owner, outbox)
    allow_resend(PHONE)  # a minute later

    stranger = browser_at(app, STRANGER_IP)
    assert ask_code(stranger, PHONE).json == SENT_ANSWER

    assert len([m for m in outbox.messages() if m["phone"] == PHONE]) == 2
    assert log_in(owner, code).headers["Location"] == "/portal"


def test_a_strangers_request_does_not_hold_the_owners_send_button(app, outbox, operator):
    stranger = browser_at(app, STRANGER_IP)
    assert ask_code(stranger, PHONE).status_code == 200

    owner = browser_at(app, OWNER_IP)
    code = owner_code(owner, outbox)

    assert log_in(owner, code).headers["Location"] == "/portal"


# --- the day's sends --------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["login", "join"])
def test_a_stranger_cannot_spend_the_owners_sends_of_the_day(app, outbox, operator, page):
    stranger = browser_at(app, STRANGER_IP)
    ask = ask_code if page == "login" else ask_join_code
    for _send in range(10):
        assert ask(stranger, PHONE).status_code == 200
        allow_resend(PHONE)  # stands in for waiting out the interval between sends
    refused = ask(stranger, PHONE)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "86400")

    owner = browser_at(app, OWNER_IP)
    code = owner_code(owner, outbox)

    assert log_in(owner, code).headers["Location"] == "/portal"


def test_a_stranger_rotating_browsers_is_held_by_the_networks_limits(app, outbox, operator):
    def fresh_browser():
        return browser_at(app, STRANGER_IP)

    assert ask_code(fresh_browser(), PHONE).status_code == 200
    again = ask_code(fresh_browser(), PHONE)
    assert again.status_code == 429
    assert 55 <= int(again.headers["Retry-After"]) <= 60
    for _send in range(9):
        allow_resend(PHONE)
        assert ask_code(fresh_browser(), PHONE).status_code == 200
    allow_resend(PHONE)

    eleventh = ask_code(fresh_browser(), PHONE)

    assert (eleventh.status_code, eleventh.headers["Retry-After"]) == (429, "86400")
    assert len([m for m in outbox.messages() if m["phone"] == PHONE]) == 10


def test_ipv6_clients_are_counted_per_64():
    """Unit level: development mode answers loopback clients only, and ::1 is the one loopback
    IPv6 address, so the /64 grouping is checked on the key the limits use."""
    from idp.auth.client import network_key

    assert network_key("2001:db8:0:7::1") == network_key("2001:db8:0:7:ffff::2")
    assert network_key("2001:db8:0:7::1") != network_key("2001:db8:0:8::1")
    assert network_key("127.0.0.1") != network_key("127.0.0.2")


@pytest.mark.parametrize("settings_overrides", [{"sms_phone_daily_limit": 3}])
def test_the_phones_daily_limit_holds_many_networks_but_not_the_owners_browser(
    app, outbox, operator
):
    owner = browser_at(app, OWNER_IP)
    assert log_in(owner, owner_code(owner, outbox)).status_code == 302
    owner.post("/logout", data={"csrf_token": login_token(owner)})
    allow_resend(PHONE)

    answers = [ask_code(browser_at(app, f"127.0.113.{n}"), PHONE) for n in range(1, 4)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "86400"
    code = owner_code(owner, outbox)
    assert log_in(owner, code).headers["Location"] == "/portal"


@pytest.mark.parametrize("settings_overrides", [{"sms_global_hourly_limit": 2}])
def test_the_total_hourly_budget_holds_everyone_but_the_owners_browser(app, outbox, operator):
    owner = browser_at(app, OWNER_IP)
    assert log_in(owner, owner_code(owner, outbox)).status_code == 302
    allow_resend(PHONE)

    other = ask_code(browser_at(app, "127.0.113.1"), "13700137001")
    over = ask_code(browser_at(app, "127.0.113.2"), "13700137002")

    assert other.status_code == 200
    assert (over.status_code, over.headers["Retry-After"]) == (429, "3600")
    assert ask_code(owner, PHONE).json == SENT_ANSWER


# --- login attempts per network ---------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"login_ip_limit": 3}])
def test_login_attempts_per_network_are_limited_across_phones(app, outbox, operator):
    owner = browser_at(app, STRANGER_IP)  # the owner shares the stranger's address (a NAT)
    assert log_in(owner, owner_code(owner, outbox)).status_code == 302
    stranger = browser_at(app, STRANGER_IP)
    token = login_token(stranger)
    phones = ["13700137001", "13700137002", "13700137003", "13700137004"]

    answers = [
        post_login(stranger, phone=phone, password="Any-Pass-1", sms_code="123456", token=token)
        for phone in phones
    ]

    assert [a.status_code for a in answers] == [400, 400, 429, 429]  # the owner's login was one
    assert all_field_errors(answers[3].text) == {"password": [TOO_MANY_ATTEMPTS]}
    elsewhere = browser_at(app, OWNER_IP)
    other_network = post_login(elsewhere, phone=phones[3], password="Any-Pass-1", sms_code="123456")
    assert all_field_errors(other_network.text) == {"sms_code": [WRONG_CODE]}
    results = [result for _actor, result in audit_events("auth.login_failed")]
    assert results == ["sms_code_invalid"] * 2 + ["too_many_attempts"] * 2 + ["sms_code_invalid"]
    allow_resend(PHONE)
    assert log_in(owner, owner_code(owner, outbox)).headers["Location"] == "/portal"


# --- the browser's id -------------------------------------------------------------------------


def test_the_login_page_gives_the_browser_a_random_id_once(client):
    first = client.get("/login")
    (set_cookie,) = [c for c in first.headers.getlist("Set-Cookie") if c.startswith("idp_browser=")]
    attributes = [part.strip() for part in set_cookie.split(";")]
    value = client.get_cookie(BROWSER_COOKIE).value

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    again = client.get("/login")
    assert not any(c.startswith("idp_browser=") for c in again.headers.getlist("Set-Cookie"))
    assert client.get_cookie(BROWSER_COOKIE).value == value


@pytest.mark.parametrize("planted", ["short", "x" * 44, "a" * 42 + "!"])
def test_a_malformed_browser_id_is_replaced(client, planted):
    client.set_cookie(BROWSER_COOKIE, planted)

    client.get("/join")

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", client.get_cookie(BROWSER_COOKIE).value)
