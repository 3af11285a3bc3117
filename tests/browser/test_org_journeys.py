"""Journeys 1 and 2 in a real browser, with the real UKey agent over a SoftHSM2 token.

Certificate login (企业 Ukey 信息 from the agent, PIN, UKey 登录) → registration wizard: 否 path
(注册成功), 是 path (legacy account + TOTP code: 绑定成功), the duplicate-USCC refusal; an org
admin with two identities entering the demo relying party through the 角色选择 page; the login
page without an agent (客户端工具); a wrong PIN; personal and employee UKeys refused.
"""

from __future__ import annotations

import contextvars
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.pki import ORG_NAME, ORG_POLICY, USCC, TestPki

pytestmark = pytest.mark.browser

# The demo relying party as tests/browser/conftest.py registers it.
RP_CLIENT_ID = "maintenance-fund"
RP_CLIENT_NAME = "上海市房屋维修资金管理系统"
LEGACY_ACCOUNT = "WXZJ-0001"
TOTP_SECRET = pyotp.random_base32()
CONTACT = {
    "contact_person": "王五",
    "contact_phone": "021-62345678",
    "address": "上海市浦东新区示例路 100 号",
}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def seed_operator() -> bool:
    """These journeys start from an organisation the provider does not know yet."""
    return False


@pytest.fixture
def agent_url(ukey_agent: Any) -> str:
    """Where the login page looks for the agent: the running one."""
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


# --- helpers ----------------------------------------------------------------------------------


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda url: url.startswith(prefix)


def wait_for_url(page: Any, url: str | Callable[[str], bool], csp_violations: list[str]) -> None:
    """``page.wait_for_url``, failing with the browser's CSP reports when a navigation was
    blocked by the page's Content-Security-Policy."""
    try:
        page.wait_for_url(url)
    except PlaywrightTimeoutError:
        if csp_violations:
            raise AssertionError(
                f"navigation blocked by Content-Security-Policy (still at {page.url}): "
                + " | ".join(csp_violations)
            ) from None
        raise


def open_cert_login(page: Any, provider: Any) -> None:
    """/login?method=cert, with the token's certificate shown as 企业 Ukey 信息."""
    page.goto(f"{provider.url}/login?method=cert")
    expect(page.locator("h1")).to_have_text("统一认证登录平台")
    expect(page.locator("h2")).to_have_text("企业 Ukey 信息")
    expect(page.locator("#ukey-info")).to_be_visible()
    expect(page.locator("#ukey-org")).to_have_text(ORG_NAME)
    expect(page.locator("#ukey-uscc")).to_have_text(USCC)
    expect(page.locator("#ukey-status")).to_have_text("请输入 UKey 口令后点击「UKey 登录」")
    expect(page.locator("#ukey-submit")).to_be_enabled()
    expect(page.locator("#ukey-no-agent")).to_be_hidden()


def cert_login(
    page: Any, provider: Any, agent: Any, landing: str, csp_violations: list[str]
) -> None:
    """Open the certificate tab, type the PIN, UKey 登录, arrive at ``landing``."""
    open_cert_login(page, provider)
    page.locator("#ukey-pin").fill(agent.pin)
    expect(page.locator("#ukey-submit")).to_have_text("UKey 登录")
    page.locator("#ukey-submit").click()
    wait_for_url(page, f"{provider.url}{landing}", csp_violations)


def choose_type(page: Any, label: str) -> None:
    """选择注册类型: tick 【…注册】 and go on with 【下一步】."""
    expect(page.locator("h1")).to_have_text("选择注册类型")
    page.get_by_label(label).check()
    page.get_by_role("button", name="下一步").click()


def fill_registration(page: Any) -> None:
    """The 否 form: name prefilled from the certificate, USCC read-only; contact details."""
    name = page.locator('input[name="name"]')
    expect(name).to_have_value(ORG_NAME)
    uscc = page.locator('input[name="uscc"]')
    expect(uscc).to_have_value(USCC)
    expect(uscc).not_to_be_editable()
    for field, value in CONTACT.items():
        page.locator(f'input[name="{field}"]').fill(value)
    platform = page.get_by_label(RP_CLIENT_NAME)
    platform.check()
    expect(platform).to_be_checked()


def import_legacy_account(provider: Any, tmp_path: Path, org_type: str) -> None:
    """The RP's legacy account, imported as a platform admin does (``idp legacy import``)."""
    from idp.orgs.cli import legacy_cli

    csv_file = tmp_path / "legacy.csv"
    csv_file.write_text(
        "client_id,uscc,org_type,legacy_account,totp_secret,legacy_key\n"
        f"{RP_CLIENT_ID},{USCC},{org_type},{LEGACY_ACCOUNT},{TOTP_SECRET},\n",
        encoding="utf-8",
    )
    runner = provider.app.test_cli_runner()
    # A fresh context: the command's app context must not leak into this thread's.
    result = contextvars.Context().run(runner.invoke, legacy_cli, ["import", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("imported: 1,"), result.output


def in_db(provider: Any, query: Callable[[Any], Any]) -> Any:
    """Run ``query(session)`` against the live provider's database, in a context of its own."""

    def run() -> Any:
        from idp import db

        with provider.app.app_context():
            return query(db.session())

    return contextvars.Context().run(run)


def org_summary(session: Any) -> dict[str, Any] | None:
    """The organisation of the test USCC: details, identities and their registrations."""
    from idp.identity.models import Organisation

    org = session.scalar(select(Organisation).where(Organisation.uscc == USCC))
    if org is None:
        return None
    return {
        "name": org.name,
        "contact_person": org.contact_person,
        "contact_phone": org.contact_phone,
        "address": org.address,
        "identities": {
            i.org_type.value: sorted(
                (r.client_id, r.legacy_account.account_ref if r.legacy_account else None)
                for r in i.registrations
            )
            for i in org.identities
        },
    }


def row_counts(session: Any) -> dict[str, int]:
    from idp.identity.models import IdentityRegistration, Organisation, OrgIdentity

    return {
        model.__name__: session.scalar(select(func.count()).select_from(model))
        for model in (Organisation, OrgIdentity, IdentityRegistration)
    }


# --- journeys ---------------------------------------------------------------------------------


def test_registration_no_path(
    page: Any,
    live_provider: Any,
    ukey_agent: Any,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    provider = live_provider.url
    open_cert_login(page, live_provider)
    page.locator("#ukey-pin").fill(ukey_agent.pin)
    page.screenshot(path=results_dir / "provider-cert-login.png", full_page=True)
    page.locator("#ukey-submit").click()
    wait_for_url(page, f"{provider}/register", csp_violations)

    choose_type(page, "审计单位注册")
    wait_for_url(page, f"{provider}/register/audit", csp_violations)
    expect(page.locator("#prompt")).to_have_text(
        "您所在企业是否在维修资金系统已有审计单位身份账号？（OTP 或密钥）"
    )
    expect(page.locator("#answer-yes")).to_have_text("是")
    page.locator("#answer-no").click()

    wait_for_url(page, f"{provider}/register/audit/new", csp_violations)
    expect(page.locator("h1")).to_have_text("注册审计单位")
    fill_registration(page)
    page.screenshot(path=results_dir / "provider-registration-form.png", full_page=True)
    page.get_by_role("button", name="注册", exact=True).click()

    expect(page.locator("#result")).to_have_text("注册成功")
    expect(page.locator("main")).to_contain_text(RP_CLIENT_NAME)
    page.screenshot(path=results_dir / "provider-registration-done.png", full_page=True)
    assert in_db(live_provider, org_summary) == {
        "name": ORG_NAME,
        **CONTACT,
        "identities": {"audit": [(RP_CLIENT_ID, None)]},
    }

    # The same login session now belongs to the registered organisation.
    page.get_by_role("link", name="进入门户").click()
    wait_for_url(page, f"{provider}/portal", csp_violations)
    entry = page.locator(".rp-list li", has_text=RP_CLIENT_NAME)
    expect(entry).to_contain_text(f"{ORG_NAME} · 审计单位")
    assert not csp_violations, csp_violations


@pytest.mark.parametrize("ukey_leaf", ["good_ec"])
def test_binding_yes_path_with_a_totp_code(
    page: Any,
    live_provider: Any,
    ukey_agent: Any,
    tmp_path: Path,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    provider = live_provider.url
    import_legacy_account(live_provider, tmp_path, "cost_consulting")
    cert_login(page, live_provider, ukey_agent, "/register", csp_violations)

    choose_type(page, "工程造价咨询单位注册")
    wait_for_url(page, f"{provider}/register/cost_consulting", csp_violations)
    expect(page.locator("#prompt")).to_have_text(
        "您所在企业是否在维修资金系统已有工程造价咨询单位身份账号？（OTP 或密钥）"
    )
    page.locator("#answer-yes").click()

    wait_for_url(page, f"{provider}/register/cost_consulting/bind", csp_violations)
    expect(page.locator("h1")).to_have_text("维修资金企业绑定")
    expect(page.locator("#client-name")).to_have_text(RP_CLIENT_NAME)
    page.locator('input[name="legacy_account"]').fill(LEGACY_ACCOUNT)
    page.locator('input[name="otp_code"]').fill(pyotp.TOTP(TOTP_SECRET).now())
    page.screenshot(path=results_dir / "provider-binding-form.png", full_page=True)
    page.get_by_role("button", name="绑定", exact=True).click()

    expect(page.locator("#result")).to_have_text("绑定成功")
    expect(page.locator("main")).to_contain_text("工程造价咨询单位")
    assert in_db(live_provider, org_summary) == {
        "name": ORG_NAME,
        "contact_person": "",
        "contact_phone": "",
        "address": "",
        "identities": {"cost_consulting": [(RP_CLIENT_ID, LEGACY_ACCOUNT)]},
    }
    assert not csp_violations, csp_violations


@pytest.mark.parametrize(
    ("org_type", "label", "word"),
    [("cost_consulting", "工程造价咨询单位", "审价单位"), ("audit", "审计单位", "审计单位")],
)
def test_duplicate_uscc_is_refused_and_nothing_is_created(
    page: Any,
    live_provider: Any,
    ukey_agent: Any,
    tmp_path: Path,
    org_type: str,
    label: str,
    word: str,
    csp_violations: list[str],
) -> None:
    provider = live_provider.url
    import_legacy_account(live_provider, tmp_path, org_type)
    cert_login(page, live_provider, ukey_agent, "/register", csp_violations)
    choose_type(page, f"{label}注册")
    wait_for_url(page, f"{provider}/register/{org_type}", csp_violations)
    page.locator("#answer-no").click()
    wait_for_url(page, f"{provider}/register/{org_type}/new", csp_violations)
    fill_registration(page)
    page.get_by_role("button", name="注册", exact=True).click()

    expect(page.locator("#form-error")).to_have_text(
        f"维修资金系统已经存在统一社会信用代码（含组织机构代码）相同的{word}，申请失败！"
    )
    expect(page.locator("#result")).to_have_count(0)
    assert page.url == f"{provider}/register/{org_type}/new", page.url
    # What was typed is kept for a second look; nothing was created.
    expect(page.locator('input[name="contact_person"]')).to_have_value(CONTACT["contact_person"])
    assert in_db(live_provider, row_counts) == {
        "Organisation": 0,
        "OrgIdentity": 0,
        "IdentityRegistration": 0,
    }
    assert not csp_violations, csp_violations


def register_two_identities(provider: Any) -> None:
    """The organisation is both 审计单位 and 工程造价咨询单位 at the demo RP."""
    from idp.identity.models import IdentityRegistration, Organisation, OrgIdentity, OrgType

    def add(session: Any) -> None:
        org = Organisation(uscc=USCC, name=ORG_NAME)
        for org_type in (OrgType.AUDIT, OrgType.COST_CONSULTING):
            identity = OrgIdentity(org_type=org_type)
            identity.registrations.append(IdentityRegistration(client_id=RP_CLIENT_ID))
            org.identities.append(identity)
        session.add(org)
        session.commit()

    in_db(provider, add)


def test_org_admin_chooses_a_role_and_enters_the_demo_rp(
    page: Any,
    live_provider: Any,
    live_rp: str,
    ukey_agent: Any,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    register_two_identities(live_provider)
    cert_login(page, live_provider, ukey_agent, "/portal", csp_violations)

    entry = page.locator(".rp-list li", has_text=RP_CLIENT_NAME)
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("审计单位")
    expect(entry).to_contain_text("工程造价咨询单位")
    page.screenshot(path=results_dir / "provider-portal-org-admin.png", full_page=True)
    entry.get_by_role("link", name="进入").click()

    # The RP starts the flow (third-party initiated login); two identities: 角色选择 first.
    wait_for_url(page, starts_with(f"{live_provider.url}/authorize/choose"), csp_violations)
    expect(page.locator("h1")).to_have_text("角色选择")
    expect(page.locator("main")).to_contain_text(RP_CLIENT_NAME)
    choice = page.get_by_label(f"{ORG_NAME} · 工程造价咨询单位 · 企业管理员")
    expect(page.locator('input[name="identity"]')).to_have_count(2)
    choice.check()
    page.screenshot(path=results_dir / "provider-choose-role.png", full_page=True)
    page.get_by_role("button", name="进入系统").click()

    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#org-name")).to_have_text(ORG_NAME)
    expect(page.locator("#org-type")).to_have_text("工程造价咨询单位")
    expect(page.locator("#role")).to_have_text("企业管理员")
    expect(page.locator("#amr")).to_have_text("hwk sc")
    page.screenshot(path=results_dir / "rp-home-org-admin.png", full_page=True)
    assert not csp_violations, csp_violations


def test_registration_started_at_the_relying_party_ends_back_there(
    page: Any,
    live_provider: Any,
    live_rp: str,
    ukey_agent: Any,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    """RP home → 维修资金业务办理组织机构注册 → UKey login → wizard → 注册成功 → 继续登录 → the
    RP, logged in as the organisation's admin (the authorization request waited)."""
    provider = live_provider.url
    page.goto(f"{live_rp}/")
    page.locator("#register-button").click()
    wait_for_url(page, starts_with(f"{provider}/login?"), csp_violations)
    assert "method=cert" in page.url and "interaction=" in page.url, page.url
    expect(page.locator("#ukey-org")).to_have_text(ORG_NAME)
    page.locator("#ukey-pin").fill(ukey_agent.pin)
    page.locator("#ukey-submit").click()

    wait_for_url(page, f"{provider}/register", csp_violations)
    choose_type(page, "审计单位注册")
    wait_for_url(page, f"{provider}/register/audit", csp_violations)
    page.locator("#answer-no").click()
    wait_for_url(page, f"{provider}/register/audit/new", csp_violations)
    fill_registration(page)
    page.get_by_role("button", name="注册", exact=True).click()

    expect(page.locator("#result")).to_have_text("注册成功")
    expect(page.get_by_role("link", name="进入门户")).to_have_count(0)
    page.screenshot(path=results_dir / "provider-registration-done-for-rp.png", full_page=True)
    page.locator("#continue-login").click()

    wait_for_url(page, f"{live_rp}/", csp_violations)
    expect(page.locator("#org-name")).to_have_text(ORG_NAME)
    expect(page.locator("#org-type")).to_have_text("审计单位")
    expect(page.locator("#role")).to_have_text("企业管理员")
    assert not csp_violations, csp_violations


def test_cancelling_the_role_choice_is_told_in_a_sentence_at_the_relying_party(
    page: Any,
    live_provider: Any,
    live_rp: str,
    ukey_agent: Any,
    results_dir: Path,
    csp_violations: list[str],
) -> None:
    register_two_identities(live_provider)
    cert_login(page, live_provider, ukey_agent, "/portal", csp_violations)
    page.goto(f"{live_rp}/login")
    wait_for_url(page, starts_with(f"{live_provider.url}/authorize/choose"), csp_violations)

    page.get_by_role("button", name="取消").click()

    wait_for_url(page, starts_with(f"{live_rp}/callback"), csp_violations)
    expect(page.locator("#error-code")).to_have_text("access_denied")
    expect(page.locator("#error-message")).to_have_text(
        "您已取消登录，或您选择的身份不能使用本系统。如需继续，请重新登录。"
    )
    expect(page.locator("#login-again")).to_be_visible()
    page.screenshot(path=results_dir / "rp-access-denied.png", full_page=True)
    assert not csp_violations, csp_violations


def test_wrong_pin_shows_the_agents_error_and_logs_nobody_in(
    page: Any, live_provider: Any, ukey_agent: Any, results_dir: Path
) -> None:
    provider = live_provider.url
    open_cert_login(page, live_provider)
    page.locator("#ukey-pin").fill("654321")
    with page.expect_response(f"{ukey_agent.url}/sign") as signed:
        page.locator("#ukey-submit").click()
    assert signed.value.status == 401, signed.value.status
    assert signed.value.json()["error"] == "wrong_pin"

    pin_field = page.locator(".field", has=page.locator("#ukey-pin"))
    error = pin_field.locator("#ukey-pin-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(signed.value.json()["message"])
    expect(error).to_contain_text("PIN 码错误")
    expect(page.locator("#ukey-submit")).to_be_enabled()  # may try again
    expect(page.locator("#ukey-pin")).to_have_value("")
    assert page.url == f"{provider}/login?method=cert", page.url
    page.screenshot(path=results_dir / "provider-cert-login-wrong-pin.png", full_page=True)

    # Nobody is logged in: the wizard and the portal send back to the login page.
    page.goto(f"{provider}/register")
    page.wait_for_url(f"{provider}/login?method=cert")
    page.goto(f"{provider}/portal")
    page.wait_for_url(starts_with(f"{provider}/login"))
    assert in_db(live_provider, row_counts)["Organisation"] == 0


def submit_pin_and_expect_refusal(page: Any, provider: Any, agent: Any, message: str) -> None:
    """UKey 登录 with the right PIN: the agent signs, the provider refuses the certificate, the
    login page shows why, and nobody is logged in."""
    page.locator("#ukey-pin").fill(agent.pin)
    page.locator("#ukey-submit").click()
    expect(page.locator("#cert-error")).to_have_text(message)
    assert page.url == f"{provider.url}/login/cert", page.url
    page.goto(f"{provider.url}/register")
    page.wait_for_url(f"{provider.url}/login?method=cert")
    assert in_db(provider, row_counts)["Organisation"] == 0


@pytest.mark.parametrize("ukey_leaf", ["personal_cn"])
def test_a_personal_ukey_with_the_code_in_its_cn_is_refused(
    page: Any, live_provider: Any, ukey_agent: Any, results_dir: Path, csp_violations: list[str]
) -> None:
    page.goto(f"{live_provider.url}/login?method=cert")
    subject = ukey_agent.leaf.cert.subject.rfc4514_string()
    expect(page.locator("#ukey-org")).to_have_text(subject)  # no O: the subject is shown
    expect(page.locator("#ukey-uscc")).to_have_text("-")  # the CN is not read
    submit_pin_and_expect_refusal(
        page, live_provider, ukey_agent, "证书中未找到有效的统一社会信用代码"
    )
    page.screenshot(path=results_dir / "provider-cert-login-personal-ukey.png", full_page=True)
    assert not csp_violations, csp_violations


class TestAnIssuerNamingItsOrganisationPolicy:
    """The trust directory's uscc-order.json gives the issuing CA the policy OID of its
    organisation certificates."""

    @pytest.fixture
    def settings_overrides(
        self, provider_server: Any, ukey_pki: TestPki, tmp_path: Path, agent_url: str
    ) -> dict[str, object]:
        issuer = ukey_pki.intermediate.cert.subject.rfc4514_string()
        rules = {issuer: {"policies": [ORG_POLICY]}}
        return {
            "issuer": f"http://127.0.0.1:{provider_server.port}",
            "trust_dir": ukey_pki.write_trust_dir(tmp_path / "trust", rules=rules),
            "ukey_agent_url": agent_url,
        }

    @pytest.mark.parametrize("ukey_leaf", ["employee"])
    def test_an_employee_ukey_with_the_organisation_extension_is_refused(
        self,
        page: Any,
        live_provider: Any,
        ukey_agent: Any,
        results_dir: Path,
        csp_violations: list[str],
    ) -> None:
        open_cert_login(page, live_provider)  # shows the organisation and its code
        submit_pin_and_expect_refusal(page, live_provider, ukey_agent, "该证书不是机构证书")
        page.screenshot(path=results_dir / "provider-cert-login-employee-ukey.png", full_page=True)
        assert not csp_violations, csp_violations

    @pytest.mark.parametrize("ukey_leaf", ["org_policy"])
    def test_its_organisation_ukey_logs_in(
        self, page: Any, live_provider: Any, ukey_agent: Any, csp_violations: list[str]
    ) -> None:
        cert_login(page, live_provider, ukey_agent, "/register", csp_violations)
        expect(page.locator("h1")).to_have_text("选择注册类型")
        assert not csp_violations, csp_violations


class TestWithoutAgent:
    """No agent listens where the page looks for it."""

    @pytest.fixture
    def agent_url(self) -> Iterator[str]:
        """A loopback port that is bound but not listening: connections are refused, and no
        other process can take the port during the test."""
        with socket.socket() as reserved:
            reserved.bind(("127.0.0.1", 0))
            yield f"http://127.0.0.1:{reserved.getsockname()[1]}"

    def test_the_certificate_tab_offers_the_client_tool(
        self, page: Any, live_provider: Any, results_dir: Path, csp_violations: list[str]
    ) -> None:
        provider = live_provider.url
        page.goto(f"{provider}/login?method=cert")
        message = page.locator("#ukey-no-agent")
        expect(message).to_be_visible()
        expect(message).to_contain_text("未检测到 UKey 客户端工具")
        link = message.get_by_role("link", name="下载并安装「客户端工具」")
        expect(link).to_have_attribute("href", "/ukey/agent")
        expect(page.locator("#ukey-submit")).to_be_disabled()
        expect(page.locator("#ukey-status")).to_have_text("")
        page.screenshot(path=results_dir / "provider-cert-login-no-agent.png", full_page=True)

        link.click()
        wait_for_url(page, f"{provider}/ukey/agent", csp_violations)
        expect(page.locator("main")).to_contain_text("客户端工具")
        # Only the agent fetch failed (connection refused), not the page's own policy.
        assert not csp_violations, csp_violations

    def test_no_empty_certificate_details_are_shown(self, page: Any, live_provider: Any) -> None:
        page.goto(f"{live_provider.url}/login?method=cert")
        expect(page.locator("#ukey-no-agent")).to_be_visible()
        assert page.locator("#ukey-info").is_hidden(), "the empty 企业 Ukey 信息 list is shown"
