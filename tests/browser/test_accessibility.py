"""Accessibility (WCAG 2.1 AA) of every page type, checked with axe-core in Chromium, in both
languages, at desktop width and at a phone's 390×844: no serious or critical violation.

axe-core is vendored (tests/browser/vendor/axe-core, MPL-2.0): the test needs no network. The
pages are reached as their users reach them; the logged-in ones through a login session made
in the provider's store (as tests/integration/orgs/helpers.cert_login does), its cookie handed
to the browser.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveProvider
from tests.conftest import DEMO_USCC, register_for

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# `make screenshots` sets this: every page checked is also saved there as a PNG.
SCREENSHOTS = (
    Path(os.environ["IDP_TEST_SCREENSHOTS_DIR"])
    if os.environ.get("IDP_TEST_SCREENSHOTS_DIR")
    else None
)

ANONYMOUS = [
    "/login",
    "/login?method=cert",
    "/password/forgot",
    "/ukey/agent",
    "/logout",
    "/join",
    "/authorize?client_id=unknown&response_type=code",
    "/no-such-page",
    "/admin/login",
]
ORG_ADMIN = [
    "/org/operators",
    "/org/operators/new",
    "/org/operators/{operator}",
    "/org/operators/{operator}/edit",
    "/org/operators/{operator}/delete",
    "/org/reviews",
    "/org/audit",
    "/portal",
    "/account",
    "/register",
    "/register/cost_consulting",
    "/register/cost_consulting/new",
    "/register/cost_consulting/bind",
]
OPERATOR = ["/password/change"]
PLATFORM_ADMIN = [
    "/admin/",
    "/admin/clients",
    "/admin/clients/new",
    "/admin/clients/{client}",
    "/admin/clients/{client}/rotate-secret",
    "/admin/initial-access-tokens",
    "/admin/initial-access-tokens/new",
    "/admin/orgs",
    "/admin/orgs/{uscc}",
    "/admin/orgs/{uscc}/suspend",
    "/admin/legacy",
    "/admin/audit",
    "/admin/step-up",
    "/admin/recovery-codes",
]


def login_cookie(
    live: LiveProvider, *, kind: str, org_id: int | None, account_id: int | None
) -> str:
    from idp.auth import session
    from idp.db import utcnow

    now = utcnow().timestamp()
    with live.app.app_context():
        login = session.LoginSession(
            id=secrets.token_urlsafe(32),
            account_id=account_id,
            kind=kind,
            amr=["hwk", "sc"] if kind == "org_admin" else ["pwd", "sms", "mfa"],
            acr="urn:idp:acr:ukey" if kind == "org_admin" else "urn:idp:acr:operator",
            auth_time=now,
            created_at=now,
            org_id=org_id,
            certificate={
                "uscc": DEMO_USCC,
                "org_name": live.org_name,
                "fingerprint": secrets.token_hex(32),
                "subject": f"CN={live.org_name}",
                "issuer": "CN=Test CA",
            }
            if kind == "org_admin"
            else None,
        )
        session.create(login)
    return login.id


@pytest.fixture
def settings_overrides(provider_server: Any) -> dict[str, object]:
    """The live provider with the demo's footer lines, as `make run` shows it."""
    from devtools.demo import DEMO_BRAND

    brand = {name.removeprefix("IDP_").lower(): value for name, value in DEMO_BRAND.items()}
    return {"issuer": f"http://127.0.0.1:{provider_server.port}", **brand}


@pytest.fixture
def people(live_provider: LiveProvider) -> dict[str, Any]:
    """Session cookies of the demo organisation's admin and its first-login operator, and the
    operator's membership id."""
    from idp import db
    from idp.identity.models import Membership

    with live_provider.app.app_context():
        membership = db.session().query(Membership).one()
        register_for(membership.org, live_provider.client_id)  # the console needs one
        org_id, account_id, membership_id = (
            membership.org_id,
            membership.account_id,
            membership.id,
        )
    return {
        "org_admin": login_cookie(live_provider, kind="org_admin", org_id=org_id, account_id=None),
        "operator": login_cookie(
            live_provider, kind="operator", org_id=None, account_id=account_id
        ),
        "operator_id": membership_id,
        "platform_admin": platform_admin_cookie(live_provider),
        "client_id": live_provider.client_id,
    }


def platform_admin_cookie(live: LiveProvider) -> str:
    """A platform admin with a bound authenticator, logged in and stepped up just now."""
    from idp import db
    from idp.admin import session as admin_session
    from idp.admin.accounts import add_admin

    with live.app.test_request_context():
        admin = add_admin(
            db.session(), username="ops.admin", password="Platform-Admin-9", actor="test"
        )
        admin.totp_secret, admin.totp_confirmed = "JBSWY3DPEHPK3PXP", True
        db.session().commit()
        login = admin_session.start(admin.id, admin.username)
        admin_session.mark_stepped_up(login)
    return login.id


@pytest.fixture
def open_page(browser: Any, live_provider: LiveProvider) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_page(path: str, *, viewport: str, lang: str, session: str | None) -> Any:
        context = browser.new_context(
            locale="zh-CN",
            viewport=VIEWPORTS[viewport],
            bypass_csp=True,  # to inject axe
        )
        contexts.append(context)
        if session:
            cookie = "idp_admin" if path.startswith("/admin/") else "idp_session"
            context.add_cookies([{"name": cookie, "value": session, "url": live_provider.url}])
        page = context.new_page()
        separator = "&" if "?" in path else "?"
        page.goto(f"{live_provider.url}{path}{separator}lang={lang}")
        return page

    yield open_page
    for context in contexts:
        context.close()


def serious_violations(page: Any) -> list[str]:
    page.evaluate(AXE)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_AA,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_page_type_has_no_serious_accessibility_violation(open_page, people, viewport, lang):
    pages = [(path, None) for path in ANONYMOUS]
    pages += [
        (path.format(operator=people["operator_id"]), people["org_admin"]) for path in ORG_ADMIN
    ]
    pages += [(path, people["operator"]) for path in OPERATOR]
    pages += [
        (path.format(client=people["client_id"], uscc=DEMO_USCC), people["platform_admin"])
        for path in PLATFORM_ADMIN
    ]
    found = {}
    for path, session in pages:
        page = open_page(path, viewport=viewport, lang=lang, session=session)
        assert page.locator("html").get_attribute("lang") == ("en" if lang == "en" else "zh-CN")
        assert page.url.split("?")[0].endswith(path.split("?")[0]), (
            path,
            page.url,
        )  # not sent away
        if SCREENSHOTS:
            name = re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].format().lower()).strip("-")
            query = "-cert" if "method=cert" in path else ""
            shot = SCREENSHOTS / f"{name or 'home'}{query}.{lang}.{viewport}.png"
            page.screenshot(path=str(shot), full_page=True)
        violations = serious_violations(page)
        if violations:
            found[path] = violations
        page.context.close()

    assert found == {}


def test_the_check_finds_what_it_should(open_page):
    """The harness itself: an input without a label on a real page is reported."""
    page = open_page("/login", viewport="desktop", lang="zh_CN", session=None)
    page.evaluate(
        "() => document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')"
    )

    assert any(v.startswith("label (critical)") for v in serious_violations(page))
