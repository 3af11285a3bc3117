"""Front-Channel Logout 1.0 in a real browser: logging out at the provider's own logout page
ends the demo relying party's session through the iframe of the logged-out page (the relying
party has no back-channel logout URI here, and no worker runs, so nothing else could)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.test_operator_journey import request_code, starts_with, wait_for_url
from tests.flows import NEW_PASSWORD

pytestmark = pytest.mark.browser


def register_frontchannel(live_provider: Any, live_rp: str) -> None:
    from idp import db
    from idp.oidc.clients import update_client

    with live_provider.app.app_context():
        update_client(
            db.session(),
            live_provider.client_id,
            {
                "frontchannel_logout_uri": f"{live_rp}/frontchannel-logout",
                "frontchannel_logout_session_required": True,
            },
        )
        db.session().commit()


def log_in_at_the_rp(
    page: Any, live_provider: Any, live_rp: str, csp_violations: list[str]
) -> None:
    """RP home → 登录 → provider login → first-login password change → back at the RP."""
    provider = live_provider.url
    page.goto(f"{live_rp}/")
    page.locator("#login-button").click()
    wait_for_url(page, starts_with(f"{provider}/login?interaction="), csp_violations)
    code = request_code(page, live_provider)
    page.locator('input[name="password"]').fill(live_provider.operator_password)
    page.locator('input[name="sms_code"]').fill(code)
    page.locator("#login-submit").click()
    wait_for_url(page, starts_with(f"{provider}/password/change"), csp_violations)
    page.locator('input[name="current_password"]').fill(live_provider.operator_password)
    page.locator('input[name="new_password"]').fill(NEW_PASSWORD)
    page.locator('input[name="confirm_password"]').fill(NEW_PASSWORD)
    page.get_by_role("button", name="修改密码").click()
    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#user-name")).to_have_text(live_provider.operator_name)


def is_frontchannel_request(live_rp: str) -> Any:
    return lambda response: response.url.startswith(f"{live_rp}/frontchannel-logout")


def test_logout_at_the_provider_ends_the_relying_partys_session_through_the_iframe(
    page: Any, live_provider: Any, live_rp: str, csp_violations: list[str]
) -> None:
    provider = live_provider.url
    register_frontchannel(live_provider, live_rp)
    log_in_at_the_rp(page, live_provider, live_rp, csp_violations)

    # Log out at the provider itself; its logged-out page frames the relying party.
    page.goto(f"{provider}/logout")
    with page.expect_response(is_frontchannel_request(live_rp)) as framed:
        page.locator("main form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("您已安全退出")
    expect(page.locator("#frontchannel-notice")).to_be_visible()
    assert framed.value.status == 200
    query = parse_qs(urlsplit(framed.value.url).query)
    assert query["iss"] == [provider]
    assert len(query["sid"][0]) >= 16
    iframe = page.locator("iframe.logout-frame")
    expect(iframe).to_have_count(1)
    assert iframe.get_attribute("src") == framed.value.url
    assert not csp_violations, csp_violations  # frame-src allowed the relying party's origin

    # Back at the relying party: its session is over.
    page.goto(f"{live_rp}/")
    expect(page.locator("#login-button")).to_have_text("登录")
    expect(page.locator("main")).to_contain_text("您在统一认证登录平台的登录已结束")
    expect(page.locator("#user-name")).to_have_count(0)


def test_rp_initiated_logout_frames_the_relying_party_then_continues_to_it(
    page: Any, live_provider: Any, live_rp: str, csp_violations: list[str]
) -> None:
    register_frontchannel(live_provider, live_rp)
    log_in_at_the_rp(page, live_provider, live_rp, csp_violations)

    with page.expect_response(is_frontchannel_request(live_rp)) as framed:
        page.get_by_role("button", name="退出登录").click()
    assert framed.value.status == 200
    # The logged-out page continues by itself to the relying party's post-logout page.
    wait_for_url(page, starts_with(f"{live_rp}/logged-out"), csp_violations)
    expect(page.locator("h1")).to_have_text("您已安全退出")
    assert not csp_violations, csp_violations
