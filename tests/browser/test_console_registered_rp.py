"""A relying party registered in the platform console works end to end, in a real browser.

The platform admin logs in to /admin (binding the authenticator), registers the demo relying
party (上海市房屋维修资金管理系统) under 应用管理 → 注册新应用 with the redirect URI of an instance
started for this test, and copies the client secret shown once. That instance is then configured
as an operator would configure ``python -m clients.maintenance_fund``: from ``RP_*`` environment
variables with the copied credentials. An operator logs in there with phone, password and SMS
code, changes the initial password, and lands on the relying party's page showing their name
and organisation.

The instance listens on a port of its own, so the only redirect URI that matches it is the one
typed into the console: a login under the seeded ``maintenance-fund`` client would be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import LiveProvider, LiveServer
from tests.browser.test_frontchannel_logout import log_in_at_the_rp
from tests.browser.test_org_suspension_journey import ADMIN, ADMIN_PASSWORD, admin_logs_in

pytestmark = pytest.mark.browser

CLIENT_ID = "repair-funds-console"
CLIENT_NAME = "上海市房屋维修资金管理系统（控制台注册）"
# What the demo relying party asks for (clients/maintenance_fund/__init__.py).
SCOPES = ["openid", "profile", "phone", "org.operators", "org.reviews"]


@pytest.fixture
def console_rp_server() -> Iterator[LiveServer]:
    """The port of the relying party registered in the console, bound before registering it."""
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture
def provider(live_provider: LiveProvider) -> LiveProvider:
    """The live provider with one platform admin, as ``idp admins add`` leaves it."""
    from idp import db
    from idp.admin.accounts import add_admin

    with live_provider.app.app_context():
        add_admin(db.session(), username=ADMIN, password=ADMIN_PASSWORD, actor="test")
        db.session().commit()
    return live_provider


def register_in_console(page: Any, provider: LiveProvider, rp_url: str) -> str:
    """应用管理 → 注册新应用 with the relying party's URIs; returns the secret shown once."""
    admin_logs_in(page, provider.url)
    page.click("#admin-menu >> text=应用管理")
    page.click("#client-new")
    expect(page.locator("h1")).to_have_text("注册新应用")
    page.fill("#client_id", CLIENT_ID)
    page.fill("#client_name", CLIENT_NAME)
    page.check("input[name=org_types][value=audit]")
    page.fill("#redirect_uris", f"{rp_url}/callback")
    page.fill("#post_logout_redirect_uris", f"{rp_url}/logged-out")
    page.fill("#initiate_login_uri", f"{rp_url}/login")
    for scope in SCOPES:
        page.check(f"input[name=scopes][value='{scope}']")
    page.check("input[name=grant_types][value=authorization_code]")
    page.check("input[name=grant_types][value=refresh_token]")
    page.select_option("#token_endpoint_auth_method", "client_secret_basic")
    page.click("#save")

    expect(page.locator("#client-id")).to_have_text(CLIENT_ID)
    expect(page.locator("main")).to_contain_text("密钥只显示这一次，请立即妥善保存。")
    secret = str(page.inner_text("#client-secret")).strip()
    assert len(secret) >= 32, secret
    page.click("#continue")
    # Shown once: the application's own page never shows it again.
    expect(page.locator("#client-status")).to_have_text("启用")
    expect(page.locator("#client-secret")).to_have_count(0)
    assert secret not in page.content()
    return secret


def start_demo_rp(
    server: LiveServer, rp_url: str, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo relying party as ``python -m clients.maintenance_fund`` builds it: settings from
    ``RP_*`` variables (``Config.from_env``), served on the port bound for it."""
    from clients.maintenance_fund import Config
    from clients.maintenance_fund import create_app as create_rp

    # create_app sets AUTHLIB_INSECURE_TRANSPORT process-wide for an http issuer; registering it
    # with monkeypatch first puts the environment back after the test.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    config = Config.from_env(environ)
    assert config.client_id == environ["RP_CLIENT_ID"]
    assert config.redirect_uri == f"{rp_url}/callback"
    server.start(create_rp(config))


def test_a_relying_party_registered_in_the_console_logs_an_operator_in(
    browser: Any,
    page: Any,
    provider: LiveProvider,
    console_rp_server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    csp_violations: list[str],
) -> None:
    rp_url = f"http://localhost:{console_rp_server.port}"
    admin_context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    try:
        secret = register_in_console(admin_context.new_page(), provider, rp_url)
    finally:
        admin_context.close()

    environ = {
        "RP_ISSUER": provider.url,
        "RP_BASE_URL": rp_url,
        "RP_CLIENT_ID": CLIENT_ID,
        "RP_CLIENT_SECRET": secret,
    }
    start_demo_rp(console_rp_server, rp_url, environ, monkeypatch)

    # The operator: phone, password and SMS code, the first-login password change, then back at
    # the relying party with their name.
    log_in_at_the_rp(page, provider, rp_url, csp_violations)
    expect(page.locator("#org-name")).to_have_text(provider.org_name)
    expect(page.locator("#org-type")).to_have_text("审计单位")
    expect(page.locator("#role")).to_have_text("操作员")
    assert not csp_violations, csp_violations

    # The code was redeemed by the client registered in the console, with the copied secret.
    from idp import db
    from idp.audit.models import AuditEvent

    with provider.app.app_context():
        redeemed = db.session().scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "oidc.code_redeemed")
        )
        assert list(redeemed) == [f"client:{CLIENT_ID}"]
