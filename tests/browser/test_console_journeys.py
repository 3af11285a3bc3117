"""Journey 3 in a real browser: the org admin (UKey through the real agent) manages operators.

- On the provider's console: 【增加】 → the initial password arrives in the SMS outbox → the
  operator's first login (phone + password + SMS code) → forced password change → the demo
  relying party shows the operator.
- 【删除】 of an operator who is logged in at the relying party: their refresh token fails there,
  their provider session is gone and a new login is refused.
- The relying party's own 【公共部分-系统管理】 menu, calling the real management API with the
  org admin's access token: the real-name mismatch message, then 【增加】 and 【删除】.

Two browser contexts play two people: ``page`` is the org admin's, ``operator_page`` the
operator's (separate cookies).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.browser.conftest import RP_CLIENT_ID, RP_CLIENT_NAME, STEP_TIMEOUT_MS
from tests.conftest import drain_sms_queue
from tests.flows import NEW_PASSWORD, PASSWORD
from tests.pki import ORG_NAME, USCC, TestPki

pytestmark = pytest.mark.browser

NAME = "王小明"
PHONE = "13700137001"
MISMATCH = "您填写的身份信息与手机号认证失败，请确认信息是否填写正确。"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def seed_operator() -> bool:
    """The organisation is made here, registered for the relying party."""
    return False


@pytest.fixture
def agent_url(ukey_agent: Any) -> str:
    return str(ukey_agent.url)


@pytest.fixture
def settings_overrides(
    provider_server: Any, ukey_pki: TestPki, tmp_path: Path, agent_url: str
) -> dict[str, object]:
    return {
        "issuer": f"http://127.0.0.1:{provider_server.port}",
        "trust_dir": ukey_pki.write_trust_dir(tmp_path / "trust"),
        "ukey_agent_url": agent_url,
    }


@pytest.fixture
def operator_page(browser: Any) -> Iterator[Any]:
    """The operator's own browser (a second context: no cookies shared with ``page``)."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def org_id(live_provider: Any) -> int:
    """The PKI's organisation (审计单位), registered for the demo relying party."""
    from idp.identity.models import IdentityRegistration, Organisation, OrgIdentity, OrgType

    def add(session: Any) -> int:
        org = Organisation(uscc=USCC, name=ORG_NAME)
        identity = OrgIdentity(org_type=OrgType.AUDIT)
        identity.registrations.append(IdentityRegistration(client_id=RP_CLIENT_ID))
        org.identities.append(identity)
        session.add(org)
        session.commit()
        return int(org.id)

    return int(in_db(live_provider, add))


# --- helpers ----------------------------------------------------------------------------------


def in_db(provider: Any, query: Callable[[Any], Any]) -> Any:
    """Run ``query(session)`` against the live provider's database, in a context of its own."""

    def run() -> Any:
        from idp import db

        with provider.app.app_context():
            return query(db.session())

    return contextvars.Context().run(run)


def known_pair(provider: Any, name: str, phone: str) -> None:
    """Write a pair the sandbox real-name check confirms (the carrier's answer)."""
    provider.app.extensions["idp.realname"].add(name=name, phone=phone)


def add_operator(provider: Any, org_id: int, *, name: str, phone: str) -> None:
    """An operator who has already changed the initial password (password: PASSWORD)."""
    from idp.identity.models import Organisation
    from tests.conftest import enrol

    def run(session: Any) -> None:
        org = session.get(Organisation, org_id)
        account = enrol(session, org, name=name, phone=phone, password=PASSWORD)
        account.must_change_password = False
        session.commit()

    in_db(provider, run)


def allow_resend(provider: Any, phone: str) -> None:
    """Stand-in for waiting out the 60 s resend interval (tests/integration/auth/helpers.py)."""
    from tests.integration.auth.helpers import allow_resend as drop_interval

    def run() -> None:
        with provider.app.app_context():
            drop_interval(phone)

    contextvars.Context().run(run)


def outbox(provider: Any, phone: str, purpose: str) -> list[dict[str, str]]:
    """The dev outbox's messages to ``phone`` for ``purpose``, newest first, once the queued
    SMS have been delivered (tests/conftest.py, ``drain_sms_queue``)."""
    drain_sms_queue(provider.app)
    response = requests.get(f"{provider.url}/dev/sms.json", timeout=5)
    response.raise_for_status()
    return [m for m in response.json() if m["phone"] == phone and m["purpose"] == purpose]


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda url: url.startswith(prefix)


def wait_for_url(page: Any, url: str | Callable[[str], bool], csp_violations: list[str]) -> None:
    """``page.wait_for_url``, failing with the CSP reports when a navigation was blocked."""
    try:
        page.wait_for_url(url)
    except PlaywrightTimeoutError:
        if csp_violations:
            raise AssertionError(
                f"navigation blocked by Content-Security-Policy (still at {page.url}): "
                + " | ".join(csp_violations)
            ) from None
        raise


def ukey_login(page: Any, provider: Any, agent: Any, csp_violations: list[str]) -> None:
    """The certificate tab: 企业 Ukey 信息 from the agent, the PIN, UKey 登录 → the portal."""
    page.goto(f"{provider.url}/login?method=cert")
    expect(page.locator("#ukey-uscc")).to_have_text(USCC)
    page.locator("#ukey-pin").fill(agent.pin)
    page.locator("#ukey-submit").click()
    wait_for_url(page, f"{provider.url}/portal", csp_violations)


def operator_login(page: Any, provider: Any, live_rp: str, *, phone: str, password: str) -> None:
    """RP home → 登录 → the provider's form: phone, 发送验证码, the code from the outbox."""
    page.goto(f"{live_rp}/")
    page.locator("#login-button").click()
    page.wait_for_url(starts_with(f"{provider.url}/login?interaction="))
    page.locator('input[name="phone"]').fill(phone)
    page.locator("#send-sms").click()
    expect(page.locator("#sms-status")).to_have_text("验证码已发送，5 分钟内有效")
    code = outbox(provider, phone, "login")[0]["code"]
    page.locator('input[name="password"]').fill(password)
    page.locator('input[name="sms_code"]').fill(code)
    page.locator("#login-submit").click()


# --- journeys ---------------------------------------------------------------------------------


def test_admin_adds_an_operator_who_logs_in_changes_the_password_and_enters_the_rp(
    page: Any,
    operator_page: Any,
    live_provider: Any,
    live_rp: str,
    ukey_agent: Any,
    org_id: int,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    provider = live_provider.url
    known_pair(live_provider, NAME, PHONE)
    ukey_login(page, live_provider, ukey_agent, csp_violations)

    page.goto(f"{provider}/org/operators")
    expect(page.locator("h1")).to_have_text("操作员管理")
    page.locator("#add-operator").click()
    wait_for_url(page, f"{provider}/org/operators/new", csp_violations)
    page.locator('input[name="name"]').fill(NAME)
    page.locator('input[name="phone"]').fill(PHONE)
    page.screenshot(path=results_dir / "console-operator-new.png", full_page=True)
    page.locator("#save").click()

    wait_for_url(page, starts_with(f"{provider}/org/operators/"), csp_violations)
    expect(page.locator(".flash")).to_have_text(["保存成功", "初始密码已通过短信发送"])
    expect(page.locator("#operator-name")).to_have_text(NAME)
    expect(page.locator("#operator-phone")).to_have_text(PHONE)
    page.screenshot(path=results_dir / "console-operator-added.png", full_page=True)

    # 初始密码以短信方式发送: the operator reads it from their phone (the dev outbox).
    (sms,) = outbox(live_provider, PHONE, "initial_password")
    initial_password = sms["code"]
    assert initial_password in sms["text"]

    operator_login(operator_page, live_provider, live_rp, phone=PHONE, password=initial_password)
    wait_for_url(operator_page, starts_with(f"{provider}/password/change"), csp_violations)
    expect(operator_page.locator("main")).to_contain_text("首次登录需更换密码")
    operator_page.locator('input[name="current_password"]').fill(initial_password)
    operator_page.locator('input[name="new_password"]').fill(NEW_PASSWORD)
    operator_page.locator('input[name="confirm_password"]').fill(NEW_PASSWORD)
    operator_page.get_by_role("button", name="修改密码").click()

    wait_for_url(operator_page, f"{live_rp}/", csp_violations)
    expect(operator_page.locator("#user-name")).to_have_text(NAME)
    expect(operator_page.locator("#org-name")).to_have_text(ORG_NAME)
    expect(operator_page.locator("#role")).to_have_text("操作员")
    expect(operator_page.locator("#system-menu")).to_have_count(0)  # the admin's menus only
    operator_page.screenshot(path=results_dir / "rp-home-new-operator.png", full_page=True)
    assert not csp_violations, csp_violations


def test_deleting_a_logged_in_operator_ends_their_tokens_session_and_logins(
    page: Any,
    operator_page: Any,
    live_provider: Any,
    live_rp: str,
    ukey_agent: Any,
    org_id: int,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    provider = live_provider.url
    add_operator(live_provider, org_id, name=NAME, phone=PHONE)
    operator_login(operator_page, live_provider, live_rp, phone=PHONE, password=PASSWORD)
    wait_for_url(operator_page, f"{live_rp}/", csp_violations)
    expect(operator_page.locator("#role")).to_have_text("操作员")

    # The admin deletes the operator on the console, after the confirmation.
    ukey_login(page, live_provider, ukey_agent, csp_violations)
    page.goto(f"{provider}/org/operators")
    row = page.locator("#operators tbody tr", has_text=NAME)
    row.get_by_role("link", name="删除", exact=True).click()
    expect(page.locator("#confirm-text")).to_contain_text(f"确定删除操作员 {NAME}")
    page.locator("#confirm-delete").click()
    wait_for_url(page, f"{provider}/org/operators", csp_violations)
    expect(page.locator(".flash")).to_have_text("删除成功")
    expect(page.locator("#operators")).to_have_count(0)

    # At the relying party: 刷新令牌 fails, the user must log in again.
    with operator_page.expect_response(f"{live_rp}/refresh") as refreshed:
        operator_page.get_by_role("button", name="刷新令牌").click()
    assert refreshed.value.status == 401, refreshed.value.status
    expect(operator_page.locator("#error-code")).to_have_text("invalid_grant")
    expect(operator_page.locator("#error-message")).to_contain_text("需要重新登录")
    operator_page.screenshot(path=results_dir / "rp-refresh-after-delete.png", full_page=True)

    # The provider session is gone ...
    operator_page.goto(f"{provider}/portal")
    wait_for_url(operator_page, starts_with(f"{provider}/login"), csp_violations)

    # ... and a new login is refused: the code arrives, and with it and the password the
    # person reads that the account was deleted and whom to ask.
    allow_resend(live_provider, PHONE)
    sent_before = len(outbox(live_provider, PHONE, "login"))
    operator_page.goto(f"{live_rp}/login")
    wait_for_url(operator_page, starts_with(f"{provider}/login?interaction="), csp_violations)
    operator_page.locator('input[name="phone"]').fill(PHONE)
    operator_page.locator("#send-sms").click()
    expect(operator_page.locator("#sms-status")).to_have_text("验证码已发送，5 分钟内有效")
    sent = outbox(live_provider, PHONE, "login")
    assert len(sent) == sent_before + 1
    operator_page.locator('input[name="password"]').fill(PASSWORD)
    operator_page.locator('input[name="sms_code"]').fill(sent[0]["code"])
    operator_page.locator("#login-submit").click()
    expect(operator_page.locator("#password-error")).to_have_text("账户已删除，请联系本单位管理员")
    assert operator_page.url.startswith(f"{provider}/login"), operator_page.url
    assert not csp_violations, csp_violations


def test_admin_manages_operators_from_the_relying_partys_menu(
    page: Any,
    live_provider: Any,
    live_rp: str,
    ukey_agent: Any,
    org_id: int,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    known_pair(live_provider, NAME, PHONE)
    ukey_login(page, live_provider, ukey_agent, csp_violations)
    entry = page.locator(".rp-list li", has_text=RP_CLIENT_NAME)
    entry.get_by_role("link", name="进入").click()
    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#role")).to_have_text("企业管理员")

    page.locator("#menu-operators").click()
    wait_for_url(page, f"{live_rp}/system/operators", csp_violations)
    expect(page.locator("#no-operators")).to_be_visible()
    page.locator("#add-operator").click()
    page.locator('input[name="name"]').fill("王大明")  # not the name the carrier knows
    page.locator('input[name="phone"]').fill(PHONE)
    page.locator("#save").click()
    expect(page.locator("#form-error")).to_have_text(MISMATCH)
    page.screenshot(path=results_dir / "rp-system-add-mismatch.png", full_page=True)

    page.locator('input[name="name"]').fill(NAME)
    page.locator("#save").click()
    wait_for_url(page, starts_with(f"{live_rp}/system/operators/"), csp_violations)
    expect(page.locator(".flash")).to_have_text(["保存成功", "初始密码已通过短信发送"])
    expect(page.locator("#operator-phone")).to_have_text(PHONE)
    expect(page.locator("#operator-created-by")).to_have_text("企业管理员")
    assert outbox(live_provider, PHONE, "initial_password")

    page.locator("#delete-operator").click()
    expect(page.locator("#confirm-question")).to_contain_text(f"确定删除操作员 {NAME}")
    page.locator("#confirm-delete").click()
    wait_for_url(page, f"{live_rp}/system/operators", csp_violations)
    expect(page.locator(".flash")).to_have_text("删除成功")
    expect(page.locator("#no-operators")).to_be_visible()
    page.screenshot(path=results_dir / "rp-system-operators.png", full_page=True)

    page.locator("#search-form select").select_option("deleted")
    page.locator("#search").click()
    expect(page.locator("#operators tbody tr")).to_have_count(1)
    expect(page.locator("#operators tbody tr")).to_contain_text("已删除")
    assert not csp_violations, csp_violations
