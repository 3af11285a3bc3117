"""Journey 4 in a real browser: an operator's first login to the demo relying party.

RP home → 登录 → provider login (phone, password, SMS code read from the dev outbox) → forced
password change → back at the RP with the operator's identity → refresh → logout at both ends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.conftest import drain_sms_queue
from tests.flows import NEW_PASSWORD

pytestmark = pytest.mark.browser


class CspViolationError(AssertionError):
    """A navigation did not happen because Chromium enforced the page's CSP."""


def sms_code(provider: Any, phone: str) -> str:
    """The newest login code sent to ``phone``, as the dev outbox shows it once the queued SMS
    have been delivered (tests/conftest.py, ``drain_sms_queue``)."""
    drain_sms_queue(provider.app)
    response = requests.get(f"{provider.url}/dev/sms.json", timeout=5)
    response.raise_for_status()
    for message in response.json():  # newest first
        if message["phone"] == phone and message["purpose"] == "login":
            return str(message["code"])
    raise AssertionError(f"no login SMS to {phone} in the outbox")


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda url: url.startswith(prefix)


def wait_for_url(page: Any, url: str | Callable[[str], bool], csp_violations: list[str]) -> None:
    """``page.wait_for_url``, but a navigation blocked by CSP fails with the browser's reason."""
    try:
        page.wait_for_url(url)
    except PlaywrightTimeoutError:
        if csp_violations:
            raise CspViolationError(
                f"navigation blocked by Content-Security-Policy (still at {page.url}): "
                + " | ".join(csp_violations)
            ) from None
        raise


def open_provider_login(page: Any, live_provider: Any, live_rp: str) -> None:
    """RP home → 登录 → the provider's login form, for an authorization request."""
    page.goto(f"{live_rp}/")
    expect(page.locator("h1")).to_have_text("上海市房屋维修资金管理系统")
    expect(page.locator("#login-button")).to_have_text("登录")
    page.locator("#login-button").click()
    page.wait_for_url(starts_with(f"{live_provider.url}/login?interaction="))
    expect(page.locator("h1")).to_have_text("统一认证登录平台")


def request_code(page: Any, live_provider: Any) -> str:
    """Fill the phone, click 发送验证码, wait for the countdown, read the code like a phone."""
    page.locator('input[name="phone"]').fill(live_provider.operator_phone)
    send = page.locator("#send-sms")
    expect(send).to_have_text("发送验证码")
    send.click()
    expect(send).to_contain_text("秒")
    expect(send).to_be_disabled()
    expect(page.locator("#sms-status")).to_have_text("验证码已发送，5 分钟内有效")
    return sms_code(live_provider, live_provider.operator_phone)


def test_first_login_password_change_refresh_and_logout(
    page: Any, live_provider: Any, live_rp: str, results_dir: Path, csp_violations: list[str]
) -> None:
    provider = live_provider.url
    page.goto(f"{live_rp}/")
    page.screenshot(path=results_dir / "rp-home-logged-out.png", full_page=True)
    open_provider_login(page, live_provider, live_rp)
    page.screenshot(path=results_dir / "provider-login.png", full_page=True)

    code = request_code(page, live_provider)
    page.locator('input[name="password"]').fill(live_provider.operator_password)
    page.locator('input[name="sms_code"]').fill(code)
    page.screenshot(path=results_dir / "provider-login-filled.png", full_page=True)
    page.locator("#login-submit").click()

    # First login: the provider insists on a new password before going back to the RP.
    wait_for_url(page, starts_with(f"{provider}/password/change"), csp_violations)
    expect(page.locator("h1")).to_have_text("修改密码")
    expect(page.locator("main")).to_contain_text("首次登录需更换密码")
    page.locator('input[name="current_password"]').fill(live_provider.operator_password)
    page.locator('input[name="new_password"]').fill(NEW_PASSWORD)
    page.locator('input[name="confirm_password"]').fill(NEW_PASSWORD)
    page.screenshot(path=results_dir / "provider-change-password.png", full_page=True)
    page.get_by_role("button", name="修改密码").click()

    # Back at the relying party with what the ID token says.
    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#user-name")).to_have_text(live_provider.operator_name)
    expect(page.locator("#org-name")).to_have_text(live_provider.org_name)
    expect(page.locator("#org-type")).to_have_text("审计单位")
    expect(page.locator("#role")).to_have_text("操作员")
    expect(page.locator("#amr")).to_have_text("pwd sms mfa")
    page.screenshot(path=results_dir / "rp-home.png", full_page=True)

    # 刷新令牌: the refresh token grant succeeds and the user is still shown.
    with page.expect_response(f"{live_rp}/refresh") as refreshed:
        page.get_by_role("button", name="刷新令牌").click()
    assert refreshed.value.status == 302, refreshed.value.status
    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#user-name")).to_have_text(live_provider.operator_name)
    expect(page.locator("#role")).to_have_text("操作员")

    # 退出登录: RP-initiated logout ends both sessions and comes back to the RP.
    page.get_by_role("button", name="退出登录").click()
    wait_for_url(page, starts_with(f"{live_rp}/logged-out"), csp_violations)
    expect(page.locator("h1")).to_have_text("您已安全退出")
    page.screenshot(path=results_dir / "rp-logged-out.png", full_page=True)

    # The provider session is gone too: logging in again asks for credentials.
    page.goto(f"{live_rp}/login")
    wait_for_url(page, starts_with(f"{provider}/login?interaction="), csp_violations)
    expect(page.locator("#login-submit")).to_be_visible()
    assert not csp_violations, csp_violations


def test_wrong_sms_code_is_refused_next_to_the_field(
    page: Any, live_provider: Any, live_rp: str, results_dir: Path
) -> None:
    provider = live_provider.url
    open_provider_login(page, live_provider, live_rp)
    code = request_code(page, live_provider)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.locator('input[name="password"]').fill(live_provider.operator_password)
    page.locator('input[name="sms_code"]').fill(wrong)
    page.locator("#login-submit").click()

    sms_field = page.locator(".field", has=page.locator('input[name="sms_code"]'))
    expect(sms_field.locator(".field-error")).to_have_text("验证码错误或已过期")
    expect(page.locator("#sms_code-error")).to_have_text("验证码错误或已过期")
    expect(page.locator(".field-error")).to_have_count(1)
    assert page.url.startswith(f"{provider}/login"), page.url
    page.screenshot(path=results_dir / "provider-login-wrong-code.png", full_page=True)

    # Nothing logged in: the provider has no session, the RP still offers 登录.
    page.goto(f"{provider}/password/change")
    page.wait_for_url(starts_with(f"{provider}/login"))
    page.goto(f"{live_rp}/")
    expect(page.locator("#login-button")).to_be_visible()
    expect(page.locator("#user-name")).to_have_count(0)
