"""暂停使用 in real browsers: an operator is logged in at the demo relying party
(上海市房屋维修资金管理系统, which receives back-channel logout notices); a platform admin finds
the organisation in the console and suspends it after step-up; the relying party's page then
says the login has ended, and the operator's next login is refused with the reason."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import LiveProvider
from tests.browser.test_operator_journey import open_provider_login, request_code
from tests.conftest import DEMO_USCC, drain_sms_queue

pytestmark = pytest.mark.browser

ADMIN = "ops.admin"
ADMIN_PASSWORD = "Platform-Admin-9"
REASON = "资质过期，暂停使用"


@pytest.fixture
def provider(live_provider: LiveProvider) -> LiveProvider:
    """The live provider with a platform admin; the demo RP asks for back-channel logout
    notices (as ``idp-dev setup`` registers it) and its operator has set a password."""
    from idp import db
    from idp.admin.accounts import add_admin
    from idp.identity.lookup import find_account_by_phone
    from idp.oidc.clients import update_client

    with live_provider.app.app_context():
        add_admin(db.session(), username=ADMIN, password=ADMIN_PASSWORD, actor="test")
        update_client(
            db.session(),
            live_provider.client_id,
            {
                "backchannel_logout_uri": f"{live_provider.rp_url}/backchannel-logout",
                "backchannel_logout_session_required": True,
            },
        )
        account = find_account_by_phone(db.session(), live_provider.operator_phone)
        assert account is not None
        account.must_change_password = False
        db.session().commit()
    return live_provider


def operator_logs_in(page: Any, provider: LiveProvider, live_rp: str) -> None:
    open_provider_login(page, provider, live_rp)
    code = request_code(page, provider)
    page.locator('input[name="password"]').fill(provider.operator_password)
    page.locator('input[name="sms_code"]').fill(code)
    page.locator("#login-submit").click()
    page.wait_for_url(f"{live_rp}/")
    expect(page.locator("#user-name")).to_have_text(provider.operator_name)


def admin_logs_in(page: Any, url: str) -> str:
    """First login: bind the authenticator; returns its secret."""
    page.goto(f"{url}/admin/")
    page.fill("#username", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login")
    expect(page).to_have_url(f"{url}/admin/enrol")
    secret = page.inner_text("#totp-secret").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("#confirm")
    page.click("#continue")
    expect(page.locator("#admin-greeting")).to_contain_text(ADMIN)
    return secret


def test_suspending_the_org_ends_the_operators_session_at_the_relying_party(
    browser: Any, page: Any, provider: LiveProvider, live_rp: str
):
    url = provider.url
    operator_logs_in(page, provider, live_rp)

    admin_context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    try:
        admin = admin_context.new_page()
        secret = admin_logs_in(admin, url)
        admin.click("#admin-menu >> text=机构管理")
        admin.fill("#q", DEMO_USCC[:12])
        admin.click("#search")
        admin.click(f"#org-{DEMO_USCC} a")
        expect(admin.locator("#org-state")).to_have_text("正常")
        admin.click("#suspend")
        expect(admin).to_have_url(re.compile(re.escape(f"{url}/admin/step-up?next=")))
        admin.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))  # enrolment's code is spent
        admin.click("#step-up")
        expect(admin).to_have_url(f"{url}/admin/orgs/{DEMO_USCC}/suspend")
        admin.click("#confirm")  # without a reason: refused next to the field
        expect(admin.locator("#reason-error")).to_have_text("请填写暂停原因")
        admin.fill("#reason", REASON)
        admin.click("#confirm")
        expect(admin).to_have_url(f"{url}/admin/orgs/{DEMO_USCC}")
        expect(admin.locator("#org-state")).to_have_text("已暂停使用")
        expect(admin.locator("#org-suspension-reason")).to_have_text(REASON)
    finally:
        admin_context.close()

    drain_sms_queue(provider.app)  # idp worker delivers the back-channel logout notice

    page.goto(f"{live_rp}/")
    expect(page.locator("#ended-notice")).to_contain_text("登录已结束")
    expect(page.locator("#user-name")).to_have_count(0)
    expect(page.locator("#login-button")).to_be_visible()

    from idp import db
    from idp.audit.models import AuditEvent

    with provider.app.app_context():
        delivered = db.session().scalars(
            select(AuditEvent.result).where(
                AuditEvent.action == "oidc.backchannel_logout_delivered"
            )
        )
        assert list(delivered) == ["success"]

    # The operator's next login is refused with the suspension's reason for it.
    from tests.integration.auth.helpers import allow_resend

    with provider.app.app_context():
        allow_resend(provider.operator_phone)  # stands in for waiting out the 60 s interval
    open_provider_login(page, provider, live_rp)
    code = request_code(page, provider)
    page.locator('input[name="password"]').fill(provider.operator_password)
    page.locator('input[name="sms_code"]').fill(code)
    page.locator("#login-submit").click()
    expect(page.locator("#password-error")).to_have_text("本机构已被平台暂停使用，请联系平台管理员")
