"""我的账户 in a real browser: an operator signs in to a relying party that asks for consent,
agrees, then opens /account from the portal, sees this login session and the remembered
consent, revokes it (撤销授权), and is asked for consent again at the next login."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_operator_journey import (
    open_provider_login,
    request_code,
    starts_with,
    wait_for_url,
)
from tests.flows import NEW_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def consent_rp(live_provider: Any, live_rp: str) -> str:
    """The demo relying party, registered as one that asks for the person's consent."""
    from idp import db
    from idp.oidc.clients import update_client

    with live_provider.app.app_context():
        update_client(db.session(), live_provider.client_id, {"require_consent": True})
        db.session().commit()
    return live_rp


def sign_in_and_consent(page: Any, live_provider: Any, live_rp: str, csp: list[str]) -> None:
    provider = live_provider.url
    open_provider_login(page, live_provider, live_rp)
    code = request_code(page, live_provider)
    page.locator('input[name="password"]').fill(live_provider.operator_password)
    page.locator('input[name="sms_code"]').fill(code)
    page.locator("#login-submit").click()
    wait_for_url(page, starts_with(f"{provider}/password/change"), csp)
    page.locator('input[name="current_password"]').fill(live_provider.operator_password)
    page.locator('input[name="new_password"]').fill(NEW_PASSWORD)
    page.locator('input[name="confirm_password"]').fill(NEW_PASSWORD)
    page.get_by_role("button", name="修改密码").click()
    wait_for_url(page, starts_with(f"{provider}/authorize/consent"), csp)
    expect(page.locator("h1")).to_have_text("授权确认")
    page.get_by_role("button", name="同意").click()
    wait_for_url(page, f"{live_rp}/", csp)
    expect(page.locator("#user-name")).to_have_text(live_provider.operator_name)


def test_sessions_and_consent_on_the_account_page_and_revoking_it(
    page: Any, live_provider: Any, consent_rp: str, results_dir: Path, csp_violations: list[str]
) -> None:
    provider = live_provider.url
    sign_in_and_consent(page, live_provider, consent_rp, csp_violations)

    # The portal links to 我的账户.
    page.goto(f"{provider}/portal")
    page.locator("#nav-account").click()
    wait_for_url(page, f"{provider}/account", csp_violations)
    expect(page.locator("h1")).to_have_text("我的账户")
    expect(page.locator("#profile-name")).to_have_text(live_provider.operator_name)
    expect(page.locator("#profile-phone")).to_have_text("139****9000")
    expect(page.locator("#affiliations")).to_contain_text(live_provider.org_name)

    # This login session, marked, from this (headless Chrome) browser on loopback.
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("当前会话")
    expect(rows.first).to_contain_text("Chrome")
    expect(rows.first).to_contain_text("127.0.0.1")

    # The remembered consent to the relying party, with what it gives.
    consent = page.locator(f"#consent-{live_provider.client_id}")
    expect(consent).to_contain_text("上海市房屋维修资金管理系统")
    expect(consent).to_contain_text("手机号")
    expect(page.locator("#sign-ins tbody tr").first).to_contain_text("成功")
    page.screenshot(path=results_dir / "provider-account.png", full_page=True)

    consent.get_by_role("button", name="撤销授权").click()
    wait_for_url(page, f"{provider}/account", csp_violations)
    expect(page.locator(".flash")).to_contain_text("已撤销授权")
    expect(page.locator(f"#consent-{live_provider.client_id}")).to_have_count(0)
    expect(page.locator("#no-consents")).to_be_visible()
    page.screenshot(path=results_dir / "provider-account-revoked.png", full_page=True)

    # The relying party has to ask again: its next login shows the consent page.
    page.goto(f"{consent_rp}/login")
    wait_for_url(page, starts_with(f"{provider}/authorize/consent"), csp_violations)
    expect(page.locator("h1")).to_have_text("授权确认")
    assert not csp_violations, csp_violations
