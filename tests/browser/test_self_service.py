"""Self-service in a real browser: 忘记密码 from the login page of a relying party's request
to the relying party with the new password, and a disabled operator told so (after the SMS
code and the password), never a code that cannot work.
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.test_operator_journey import open_provider_login, starts_with, wait_for_url
from tests.conftest import drain_sms_queue
from tests.flows import NEW_PASSWORD

pytestmark = pytest.mark.browser


def newest_code(provider: Any, phone: str, purpose: str) -> str:
    """The newest ``purpose`` code sent to ``phone``, read from the dev outbox like a phone."""
    drain_sms_queue(provider.app)
    response = requests.get(f"{provider.url}/dev/sms.json", timeout=5)
    response.raise_for_status()
    for message in response.json():  # newest first
        if message["phone"] == phone and message["purpose"] == purpose:
            return str(message["code"])
    raise AssertionError(f"no {purpose} SMS to {phone} in the outbox")


def outbox_purposes(provider: Any, phone: str) -> list[str]:
    drain_sms_queue(provider.app)
    response = requests.get(f"{provider.url}/dev/sms.json", timeout=5)
    return [m["purpose"] for m in response.json() if m["phone"] == phone]


def in_provider(provider: Any, action: Any) -> Any:
    """Run ``action()`` in an app context of the live provider (a context of its own)."""

    def run() -> Any:
        with provider.app.app_context():
            return action()

    return contextvars.Context().run(run)


def send_code(page: Any) -> None:
    send = page.locator("#send-sms")
    send.click()
    expect(page.locator("#sms-status")).to_have_text("验证码已发送，5 分钟内有效")


def test_forgotten_password_end_to_end(
    page: Any, live_provider: Any, live_rp: str, results_dir: Any, csp_violations: list[str]
) -> None:
    provider, phone = live_provider.url, live_provider.operator_phone
    realname = live_provider.app.extensions["idp.realname"]
    realname.add(name=live_provider.operator_name, phone=phone)  # the carrier's record
    open_provider_login(page, live_provider, live_rp)

    page.locator("#forgot-password").click()
    wait_for_url(page, starts_with(f"{provider}/password/forgot?interaction="), csp_violations)
    expect(page.locator("h1")).to_have_text("忘记密码")
    page.locator('input[name="phone"]').fill(phone)
    send_code(page)
    page.locator('input[name="sms_code"]').fill(newest_code(live_provider, phone, "password_reset"))
    page.locator('input[name="name"]').fill(live_provider.operator_name)
    page.locator('input[name="new_password"]').fill(NEW_PASSWORD)
    page.locator('input[name="confirm_password"]').fill(NEW_PASSWORD)
    page.screenshot(path=results_dir / "provider-forgot-password.png", full_page=True)
    page.locator("#reset-submit").click()

    # Back at the login page of the same request, the phone filled in, told what happened.
    wait_for_url(page, starts_with(f"{provider}/login?"), csp_violations)
    assert "interaction=" in page.url, page.url
    expect(page.locator("main")).to_contain_text("密码已重置，请使用新密码登录")
    expect(page.locator('input[name="phone"]')).to_have_value(phone)
    assert "password_changed" in outbox_purposes(live_provider, phone)

    page.locator('input[name="password"]').fill(NEW_PASSWORD)
    # The reset's code and the login's share the phone's 60 s resend interval: skip the wait.
    in_provider(live_provider, lambda: _allow_resend(phone))
    send_code(page)
    page.locator('input[name="sms_code"]').fill(newest_code(live_provider, phone, "login"))
    page.locator("#login-submit").click()

    # The person chose this password: no forced change; the relying party's request goes on.
    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#user-name")).to_have_text(live_provider.operator_name)
    assert not csp_violations, csp_violations


def _allow_resend(phone: str) -> None:
    from tests.integration.auth.helpers import allow_resend

    allow_resend(phone)


def test_a_disabled_operator_is_told_after_the_code_and_the_password(
    page: Any, live_provider: Any, live_rp: str, results_dir: Any, csp_violations: list[str]
) -> None:
    from idp import db
    from idp.identity.lookup import find_account_by_phone
    from idp.identity.models import MembershipStatus

    phone = live_provider.operator_phone

    def disable() -> None:
        account = find_account_by_phone(db.session(), phone)
        assert account is not None
        for membership in account.memberships:
            membership.status = MembershipStatus.DISABLED
        db.session().commit()

    in_provider(live_provider, disable)
    open_provider_login(page, live_provider, live_rp)
    page.locator('input[name="phone"]').fill(phone)
    send_code(page)
    code = newest_code(live_provider, phone, "login")  # the code arrives
    page.locator('input[name="password"]').fill(live_provider.operator_password)
    page.locator('input[name="sms_code"]').fill(code)
    page.locator("#login-submit").click()

    expect(page.locator("#password-error")).to_have_text("账户已停用，请联系本单位管理员")
    expect(page.locator(".field-error")).to_have_count(1)
    page.screenshot(path=results_dir / "provider-login-disabled.png", full_page=True)
    assert page.url.startswith(f"{live_provider.url}/login"), page.url
    page.goto(f"{live_rp}/")
    expect(page.locator("#login-button")).to_be_visible()
    assert not csp_violations, csp_violations
