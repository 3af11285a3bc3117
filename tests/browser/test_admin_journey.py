"""The platform admin's first day in a real browser: the first login binds the authenticator
(the secret read off the page, the code computed as an authenticator app would), the recovery
codes are shown once, a later login asks for a code, and a relying party is registered with its
secret shown once."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import LiveProvider

pytestmark = pytest.mark.browser

ADMIN = "ops.admin"
ADMIN_PASSWORD = "Platform-Admin-9"


@pytest.fixture
def seed_operator() -> bool:
    return False


@pytest.fixture
def provider(live_provider: LiveProvider) -> LiveProvider:
    """The live provider with one platform admin, as ``idp admins add`` leaves it."""
    from idp import db
    from idp.admin.accounts import add_admin

    with live_provider.app.app_context():
        add_admin(db.session(), username=ADMIN, password=ADMIN_PASSWORD, actor="test")
        db.session().commit()
    return live_provider


def enter_password(page: Any, url: str) -> None:
    page.goto(f"{url}/admin/")
    expect(page).to_have_url(f"{url}/admin/login")
    page.fill("#username", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login")


def test_admin_enrols_logs_in_and_registers_a_relying_party(page: Any, provider: LiveProvider):
    url = provider.url
    enter_password(page, url)
    expect(page).to_have_url(f"{url}/admin/enrol")
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.inner_text("#totp-secret").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("#confirm")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#continue")
    expect(page.locator("#admin-greeting")).to_contain_text(ADMIN)

    page.click("#admin-logout")
    expect(page).to_have_url(f"{url}/admin/login")
    enter_password(page, url)
    expect(page).to_have_url(f"{url}/admin/login/code")
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))  # the enrolment's code is spent
    page.click("#verify")
    expect(page).to_have_url(f"{url}/admin/")

    page.click("#admin-menu >> text=应用管理")
    page.click("#client-new")
    page.fill("#client_id", "repair-funds")
    page.fill("#client_name", "维修资金系统")
    page.fill("#redirect_uris", "https://funds.example/callback")
    page.check("input[name=scopes][value=openid]")
    page.check("input[name=org_types][value=audit]")
    page.click("#save")
    secret_shown = page.inner_text("#client-secret").strip()

    from idp import db
    from idp.oidc.models import Client, digest

    with provider.app.app_context():
        client = (
            db.session().scalars(select(Client).where(Client.client_id == "repair-funds")).one()
        )
        assert client.secret_hash == digest(secret_shown)
        assert client.client_metadata["redirect_uris"] == ["https://funds.example/callback"]
    page.click("#continue")
    expect(page.locator("#client-id")).to_have_text("repair-funds")
